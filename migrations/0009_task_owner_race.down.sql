-- Back to 0007's triggers, without the lock.
CREATE OR REPLACE FUNCTION auth_grant_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO role_assignments (id, role_id, user_id, object_id, object_href)
    SELECT gen_random_uuid(), r.id, ra.user_id,
        (string_to_array(trim(both '/' FROM NEW.href), '/'))[7]::uuid, NEW.href
    FROM role_assignments ra
    JOIN roles towner ON towner.id = ra.role_id AND towner.name = 'core.task_owner'
    JOIN roles r ON r.name = auth_owner_role(NEW.href)
    WHERE ra.object_id = NEW.task_id AND ra.user_id IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION auth_grant_task_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_id IS NULL OR NEW.object_id IS NULL OR
        NOT EXISTS (SELECT 1 FROM roles WHERE id = NEW.role_id AND name = 'core.task_owner') THEN
        RETURN NEW;
    END IF;
    INSERT INTO role_assignments (id, role_id, user_id, object_id, object_href)
    SELECT gen_random_uuid(), r.id, NEW.user_id,
        (string_to_array(trim(both '/' FROM cr.href), '/'))[7]::uuid, cr.href
    FROM created_resources cr
    JOIN roles r ON r.name = auth_owner_role(cr.href)
    WHERE cr.task_id = NEW.object_id
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
