-- Which stored copy holds a document's bytes (relay/src/blobs.rs, protocol-spec/relay.md
-- "Document blobs"). Every upload writes its own copy under a fresh random name and the
-- row names the copy that won; an upload that loses the race for the id deletes only its
-- own copy. NULL: a document stored before this migration, under the document's name.
ALTER TABLE documents ADD COLUMN blob BLOB CHECK (blob IS NULL OR length(blob) = 16);
