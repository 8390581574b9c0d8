DROP TABLE IF EXISTS content_relations;
