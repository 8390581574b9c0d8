-- Users, groups and Pulp-style roles. A role is a named list of permissions
-- ("file.view_filerepository"); built-in roles are locked and rewritten by the
-- host at startup from the plugins' types. An assignment gives a role to one
-- user or one group, globally (object_id NULL) or on one object, named by its
-- id (ids are UUIDs, unique across tables) and its href for display.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    username      text NOT NULL UNIQUE CHECK (username <> '' AND length(username) <= 150),
    -- A bcrypt hash; empty means the user cannot log in with a password.
    password_hash text NOT NULL DEFAULT '',
    first_name    text NOT NULL DEFAULT '',
    last_name     text NOT NULL DEFAULT '',
    email         text NOT NULL DEFAULT '',
    is_staff      boolean NOT NULL DEFAULT false,
    is_active     boolean NOT NULL DEFAULT true,
    is_superuser  boolean NOT NULL DEFAULT false,
    last_login    timestamptz
);

CREATE TABLE groups (
    id         uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    name       text NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 150)
);

CREATE TABLE group_users (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_users_user ON group_users (user_id);

CREATE TABLE roles (
    id          uuid PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    name        text NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 128),
    description text NOT NULL DEFAULT '',
    permissions text[] NOT NULL DEFAULT '{}',
    locked      boolean NOT NULL DEFAULT false
);

CREATE TABLE role_assignments (
    id          uuid PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    role_id     uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    group_id    uuid REFERENCES groups (id) ON DELETE CASCADE,
    object_id   uuid,
    object_href text,
    CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    CHECK ((object_id IS NULL) = (object_href IS NULL))
);
-- One assignment per role, holder and object (NULL object = global).
CREATE UNIQUE INDEX role_assignments_unique ON role_assignments
    (role_id, COALESCE(user_id, group_id), COALESCE(object_id, '00000000-0000-0000-0000-000000000000'));
CREATE INDEX role_assignments_user ON role_assignments (user_id, object_id) WHERE user_id IS NOT NULL;
CREATE INDEX role_assignments_group ON role_assignments (group_id, object_id) WHERE group_id IS NOT NULL;
CREATE INDEX role_assignments_object ON role_assignments (object_id) WHERE object_id IS NOT NULL;

-- The owner role of a typed object follows from its href
-- /pulp/api/v3/<master>/<plugin>/<endpoint>/<id>/: "<plugin>.<endpoint without
-- dashes><master singular>_owner", e.g. file.filerepository_owner.
CREATE FUNCTION auth_owner_role(href text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN array_length(p, 1) = 7 AND p[4] IN
            ('repositories', 'remotes', 'distributions', 'publications', 'contentguards')
        THEN p[5] || '.' || replace(replace(p[6], '-', ''), '_', '') ||
            CASE p[4] WHEN 'repositories' THEN 'repository' WHEN 'remotes' THEN 'remote'
                WHEN 'distributions' THEN 'distribution' WHEN 'publications' THEN 'publication'
                ELSE 'contentguard' END || '_owner'
        END
    FROM (SELECT string_to_array(trim(both '/' FROM href), '/') AS p) s
$$;

-- What a task creates belongs to whoever owns the task (its dispatcher), as
-- Pulp gives the creator the owner role of what its task made. Done here so
-- that it holds whichever process runs the task.
CREATE FUNCTION auth_grant_created() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER created_resources_grant AFTER INSERT ON created_resources
    FOR EACH ROW EXECUTE FUNCTION auth_grant_created();

-- The API grants task ownership right after dispatch, which may be after the
-- task (an immediate one) recorded what it created: catch up on those.
CREATE FUNCTION auth_grant_task_owner() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER role_assignments_task_owner AFTER INSERT ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION auth_grant_task_owner();

-- Assignments on an object go with it.
CREATE FUNCTION auth_forget_object() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM role_assignments WHERE object_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER repositories_forget_roles AFTER DELETE ON repositories FOR EACH ROW EXECUTE FUNCTION auth_forget_object();
CREATE TRIGGER remotes_forget_roles AFTER DELETE ON remotes FOR EACH ROW EXECUTE FUNCTION auth_forget_object();
CREATE TRIGGER distributions_forget_roles AFTER DELETE ON distributions FOR EACH ROW EXECUTE FUNCTION auth_forget_object();
CREATE TRIGGER publications_forget_roles AFTER DELETE ON publications FOR EACH ROW EXECUTE FUNCTION auth_forget_object();
CREATE TRIGGER content_guards_forget_roles AFTER DELETE ON content_guards FOR EACH ROW EXECUTE FUNCTION auth_forget_object();
CREATE TRIGGER tasks_forget_roles AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION auth_forget_object();
CREATE TRIGGER uploads_forget_roles AFTER DELETE ON uploads FOR EACH ROW EXECUTE FUNCTION auth_forget_object();
