-- A task's created resources and its task_owner assignment are inserted by
-- different transactions (the task's, and the API's right after dispatch).
-- Run at once, each of 0007's grant triggers looked for the other's row
-- before it committed, and the creator got no owner role on what its task
-- made. These triggers take a transaction lock on the task before either row
-- goes in: the second waits for the first to commit, and its grant trigger,
-- whose statement takes a new snapshot, then sees the first one's row.
CREATE FUNCTION auth_lock_task_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'created_resources' THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('task-owner:' || NEW.task_id::text, 0));
    ELSIF NEW.user_id IS NOT NULL AND NEW.object_id IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('task-owner:' || NEW.object_id::text, 0));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER created_resources_lock_owner BEFORE INSERT ON created_resources
    FOR EACH ROW EXECUTE FUNCTION auth_lock_task_owner();
CREATE TRIGGER role_assignments_lock_owner BEFORE INSERT ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION auth_lock_task_owner();
