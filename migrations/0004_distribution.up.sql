-- Publications, distributions and content guards: what the content app serves.

CREATE TABLE publications (
    id                    uuid PRIMARY KEY,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    pulp_type             text NOT NULL,
    repository_version_id uuid NOT NULL REFERENCES repository_versions (id) ON DELETE CASCADE,
    -- Incomplete while its task writes it; the content app never serves it then,
    -- and a failed or reaped task's publication is deleted.
    complete              boolean NOT NULL DEFAULT false,
    -- Every artifact of the version is published at its own relative path.
    pass_through          boolean NOT NULL DEFAULT false,
    task_id               uuid REFERENCES tasks (id) ON DELETE SET NULL,
    fields                jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX publications_version ON publications (repository_version_id, created_at);
CREATE INDEX publications_task ON publications (task_id) WHERE NOT complete;

-- What a publication serves beyond pass-through: metadata it wrote (artifact_id)
-- and artifacts of units laid out at other paths (content_artifact_id).
CREATE TABLE published_artifacts (
    publication_id      uuid NOT NULL REFERENCES publications (id) ON DELETE CASCADE,
    relative_path       text NOT NULL,
    content_artifact_id uuid REFERENCES content_artifacts (id) ON DELETE CASCADE,
    artifact_id         uuid REFERENCES artifacts (id) ON DELETE RESTRICT,
    CHECK ((content_artifact_id IS NULL) <> (artifact_id IS NULL)),
    PRIMARY KEY (publication_id, relative_path)
);
CREATE INDEX published_artifacts_artifact ON published_artifacts (artifact_id) WHERE artifact_id IS NOT NULL;
CREATE INDEX published_artifacts_content_artifact ON published_artifacts (content_artifact_id) WHERE content_artifact_id IS NOT NULL;

-- Publications laying out units not yet downloaded find them by digest.
CREATE INDEX remote_artifacts_sha256 ON remote_artifacts (sha256);

CREATE TABLE content_guards (
    id          uuid PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    pulp_type   text NOT NULL,
    name        text NOT NULL UNIQUE,
    description text,
    -- Type-specific settings (header name and value, a signing secret).
    fields      jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE distributions (
    id                    uuid PRIMARY KEY,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    pulp_type             text NOT NULL,
    name                  text NOT NULL UNIQUE,
    base_path             text NOT NULL UNIQUE,
    pulp_labels           jsonb NOT NULL DEFAULT '{}',
    hidden                boolean NOT NULL DEFAULT false,
    content_guard_id      uuid REFERENCES content_guards (id) ON DELETE SET NULL,
    repository_id         uuid REFERENCES repositories (id) ON DELETE SET NULL,
    repository_version_id uuid REFERENCES repository_versions (id) ON DELETE SET NULL,
    publication_id        uuid REFERENCES publications (id) ON DELETE SET NULL,
    -- Pull-through: content missing from the served version is fetched from here.
    remote_id             uuid REFERENCES remotes (id) ON DELETE SET NULL,
    fields                jsonb NOT NULL DEFAULT '{}',
    CHECK (num_nonnulls(repository_id, repository_version_id, publication_id) <= 1)
);
CREATE INDEX distributions_type ON distributions (pulp_type);
CREATE INDEX distributions_repository ON distributions (repository_id);

-- Content apps cache what a path resolves to; every change that can alter a
-- resolution notifies them, from whichever process made it, at commit.
CREATE FUNCTION pulpo_notify_content_cache() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pulpo_content_cache', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER distributions_cache AFTER INSERT OR UPDATE OR DELETE ON distributions
    FOR EACH STATEMENT EXECUTE FUNCTION pulpo_notify_content_cache();
CREATE TRIGGER publications_cache AFTER INSERT OR UPDATE OR DELETE ON publications
    FOR EACH STATEMENT EXECUTE FUNCTION pulpo_notify_content_cache();
CREATE TRIGGER content_guards_cache AFTER INSERT OR UPDATE OR DELETE ON content_guards
    FOR EACH STATEMENT EXECUTE FUNCTION pulpo_notify_content_cache();
CREATE TRIGGER repository_versions_cache AFTER UPDATE OR DELETE ON repository_versions
    FOR EACH STATEMENT EXECUTE FUNCTION pulpo_notify_content_cache();
CREATE TRIGGER repositories_cache AFTER DELETE ON repositories
    FOR EACH STATEMENT EXECUTE FUNCTION pulpo_notify_content_cache();
