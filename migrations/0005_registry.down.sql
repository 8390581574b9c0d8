DROP TRIGGER IF EXISTS registry_pending_cache ON registry_pending;
DROP INDEX IF EXISTS contents_type_subject;
DROP INDEX IF EXISTS contents_type_name;
DROP TABLE IF EXISTS registry_pending, registry_uploads;
