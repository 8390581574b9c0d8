-- What a plugin's sync_first_stage returned as details (SyncResponse.details), per
-- repository and remote, handed back as last_sync_details by the next sync from the same
-- remote so the plugin can skip an unchanged upstream (abi/spec/v1.md 7.2); only while the
-- repository's latest version is still the one that sync left (version).
CREATE TABLE repository_sync_details (
    repository_id uuid NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    remote_id     uuid NOT NULL REFERENCES remotes (id) ON DELETE CASCADE,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       integer NOT NULL,
    details       jsonb NOT NULL,
    PRIMARY KEY (repository_id, remote_id)
);
CREATE INDEX repository_sync_details_remote ON repository_sync_details (remote_id);

-- Extra request headers a plugin asked for when it declared an artifact
-- (DeclarativeArtifact.headers, e.g. accept for a registry manifest), sent by
-- the content app's on-demand download as by the sync's.
ALTER TABLE remote_artifacts ADD COLUMN headers jsonb;
