DROP TABLE IF EXISTS repository_content, remote_artifacts, content_artifacts, contents,
    repository_versions, repositories, remotes, upload_chunks, uploads, artifacts,
    created_resources, progress_reports, tasks, task_groups, app_status CASCADE;
