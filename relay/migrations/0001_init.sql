-- Ledgerline relay schema, version 1. Never edit after release: add a new file.
-- Every id is a 16-byte BLOB; every content column holds ciphertext or wrapped keys only.

CREATE TABLE firms (
    firm        BLOB PRIMARY KEY,
    created_ms  INTEGER NOT NULL,
    next_cursor INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

CREATE TABLE roster_events (
    firm  BLOB NOT NULL,
    seq   INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (firm, seq)
) WITHOUT ROWID;

CREATE TABLE prekeys (
    firm    BLOB NOT NULL,
    device  BLOB NOT NULL,
    kind    INTEGER NOT NULL,
    key_id  INTEGER NOT NULL,
    encoded BLOB NOT NULL,
    PRIMARY KEY (firm, device, kind, key_id)
) WITHOUT ROWID;

CREATE TABLE to_device (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    firm       BLOB NOT NULL,
    recipient  BLOB NOT NULL,
    sender     BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX to_device_by_recipient ON to_device (firm, recipient, id);

CREATE TABLE rooms (
    firm       BLOB NOT NULL,
    room       BLOB NOT NULL,
    file       BLOB,
    created_by BLOB NOT NULL,
    next_seq   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (firm, room)
) WITHOUT ROWID;

CREATE TABLE room_members (
    firm   BLOB NOT NULL,
    room   BLOB NOT NULL,
    member BLOB NOT NULL,
    PRIMARY KEY (firm, room, member)
) WITHOUT ROWID;

CREATE TABLE room_messages (
    firm       BLOB NOT NULL,
    room       BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    sender     BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (firm, room, seq)
) WITHOUT ROWID;

CREATE TABLE records (
    firm       BLOB NOT NULL,
    file       BLOB NOT NULL,
    record     BLOB NOT NULL,
    version    INTEGER NOT NULL,
    cursor     INTEGER NOT NULL,
    author     BLOB NOT NULL,
    envelope   BLOB NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (firm, file, record)
) WITHOUT ROWID;
CREATE INDEX records_by_cursor ON records (firm, file, cursor);

CREATE TABLE member_key_wraps (
    firm        BLOB NOT NULL,
    member      BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    device      BLOB NOT NULL,
    wrapped     BLOB NOT NULL,
    PRIMARY KEY (firm, member, key_version, device)
) WITHOUT ROWID;

CREATE TABLE epoch_key_wraps (
    firm               BLOB NOT NULL,
    file               BLOB NOT NULL,
    epoch              INTEGER NOT NULL,
    member             BLOB NOT NULL,
    holder_key_version INTEGER NOT NULL,
    wrapped            BLOB NOT NULL,
    PRIMARY KEY (firm, file, epoch, member)
) WITHOUT ROWID;

CREATE TABLE epoch_links (
    firm    BLOB NOT NULL,
    file    BLOB NOT NULL,
    epoch   INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (firm, file, epoch)
) WITHOUT ROWID;

CREATE TABLE documents (
    firm          BLOB NOT NULL,
    document      BLOB NOT NULL,
    file          BLOB NOT NULL,
    epoch         INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    sha256        BLOB NOT NULL,
    release_share BLOB NOT NULL,
    uploaded_by   BLOB NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (firm, document)
) WITHOUT ROWID;

CREATE TABLE audit_leaves (
    firm BLOB NOT NULL,
    idx  INTEGER NOT NULL,
    leaf BLOB NOT NULL,
    PRIMARY KEY (firm, idx)
) WITHOUT ROWID;

CREATE TABLE nonces (
    device     BLOB NOT NULL,
    nonce      BLOB NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (device, nonce)
) WITHOUT ROWID;
