-- The OCI registry (host/registry): push sessions and pushed content waiting for a
-- manifest, plus indexes for the lookups the registry makes by plugin field.

-- A blob upload in progress. Its bytes are in <work dir>/registry-uploads/<id>; size and
-- the running sha256 (hash_state) describe the prefix received so far, so any serve
-- process behind one address can continue the session.
CREATE TABLE registry_uploads (
    id            uuid PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- The repository name (a distribution base_path) the session was opened on.
    name          text NOT NULL,
    size          bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
    hash_state    bytea NOT NULL
);
CREATE INDEX registry_uploads_created ON registry_uploads (created_at);

-- Blobs and manifests pushed to a repository that no version holds yet (Pulp's
-- pending_blobs and pending_manifests): a manifest push moves what it references into a
-- new version. Orphan cleanup may delete pending content after its protection time.
CREATE TABLE registry_pending (
    repository_id uuid NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    content_id    uuid NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, content_id)
);
CREATE INDEX registry_pending_content ON registry_pending (content_id);

-- Tags by name and referrers by subject within a repository version.
CREATE INDEX contents_type_name ON contents (pulp_type, (fields->>'name')) WHERE fields ? 'name';
CREATE INDEX contents_type_subject ON contents (pulp_type, (fields->>'subject')) WHERE fields ? 'subject';

-- Registries cache resolutions like content apps: a pending unit going away must reach
-- them (additions only make lookups succeed, and failures are not cached).
CREATE TRIGGER registry_pending_cache AFTER DELETE ON registry_pending
    FOR EACH STATEMENT EXECUTE FUNCTION pulpo_notify_content_cache();
