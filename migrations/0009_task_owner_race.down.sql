DROP TRIGGER IF EXISTS role_assignments_lock_owner ON role_assignments;
DROP TRIGGER IF EXISTS created_resources_lock_owner ON created_resources;
DROP FUNCTION IF EXISTS auth_lock_task_owner();
