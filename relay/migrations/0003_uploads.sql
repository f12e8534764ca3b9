-- Multipart document uploads in progress (protocol-spec/documents.md, relay-api.md).
-- Parts are recorded as they are written; after a restart the relay re-checks recorded
-- parts against the bytes on disk before resuming, and syncs the file at completion.

CREATE TABLE uploads (
    firm          BLOB NOT NULL,
    document      BLOB NOT NULL,
    file          BLOB NOT NULL,
    epoch         INTEGER NOT NULL,
    release_share BLOB NOT NULL,
    size          INTEGER NOT NULL,
    part_size     INTEGER NOT NULL,
    uploaded_by   BLOB NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (firm, document)
) WITHOUT ROWID;

CREATE TABLE upload_parts (
    firm     BLOB NOT NULL,
    document BLOB NOT NULL,
    n        INTEGER NOT NULL,
    sha256   BLOB NOT NULL,
    PRIMARY KEY (firm, document, n)
) WITHOUT ROWID;
