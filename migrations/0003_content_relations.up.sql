-- Typed links between content units declared by plugins (tag -> manifest,
-- manifest -> blobs, index -> manifests), with the link's own attributes.
CREATE TABLE content_relations (
    from_id uuid NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    name    text NOT NULL,
    to_id   uuid NOT NULL REFERENCES contents (id) ON DELETE RESTRICT,
    fields  jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (from_id, name, to_id)
);
CREATE INDEX content_relations_to ON content_relations (to_id);
