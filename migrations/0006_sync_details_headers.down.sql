ALTER TABLE remote_artifacts DROP COLUMN IF EXISTS headers;
DROP TABLE IF EXISTS repository_sync_details;
