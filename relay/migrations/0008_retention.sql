-- Retention (protocol-spec/retention.md): the year each document concerns, as its upload
-- said (documents uploaded before this migration concern the year they were uploaded in),
-- so the sweeper can find the documents a policy lets it delete.
ALTER TABLE documents ADD COLUMN year INTEGER NOT NULL DEFAULT 0;
UPDATE documents SET year = CAST(strftime('%Y', created_ms / 1000, 'unixepoch') AS INTEGER);
ALTER TABLE uploads ADD COLUMN year INTEGER NOT NULL DEFAULT 0;
UPDATE uploads SET year = CAST(strftime('%Y', created_ms / 1000, 'unixepoch') AS INTEGER);
CREATE INDEX documents_by_year ON documents (firm, file, year);
