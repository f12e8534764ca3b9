-- Ledgerline local store, version 1. Never edit after release: add a new file.
-- The whole file is encrypted by SQLCipher; plaintext lives only inside it.

CREATE TABLE state (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE messages (
    room       BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    sender     BLOB NOT NULL,
    event      TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE search USING fts5(
    kind UNINDEXED,
    ref UNINDEXED,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);
