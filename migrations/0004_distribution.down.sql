DROP TRIGGER IF EXISTS repositories_cache ON repositories;
DROP TRIGGER IF EXISTS repository_versions_cache ON repository_versions;
DROP INDEX IF EXISTS remote_artifacts_sha256;
DROP TABLE IF EXISTS distributions, content_guards, published_artifacts, publications CASCADE;
DROP FUNCTION IF EXISTS pulpo_notify_content_cache();
