-- Ledgerline relay schema for PostgreSQL, version 1: the same tables as the SQLite
-- schema after its migration 0011 (relay/migrations/), in PostgreSQL's types. Never edit
-- after release: add a new numbered file.
-- Every id is a 16-byte BYTEA; every content column holds ciphertext or wrapped keys only.
-- Integers are BIGINT throughout (the shared rules bind 64-bit integers).

CREATE TABLE firms (
    firm        BYTEA PRIMARY KEY,
    created_ms  BIGINT NOT NULL,
    next_cursor BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE roster_events (
    firm  BYTEA NOT NULL,
    seq   BIGINT NOT NULL,
    event BYTEA NOT NULL,
    PRIMARY KEY (firm, seq)
);

CREATE TABLE prekeys (
    firm    BYTEA NOT NULL,
    device  BYTEA NOT NULL,
    kind    BIGINT NOT NULL,
    key_id  BIGINT NOT NULL,
    encoded BYTEA NOT NULL,
    PRIMARY KEY (firm, device, kind, key_id)
);

CREATE TABLE to_device (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    firm       BYTEA NOT NULL,
    recipient  BYTEA NOT NULL,
    sender     BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX to_device_by_recipient ON to_device (firm, recipient, id);

CREATE TABLE rooms (
    firm       BYTEA NOT NULL,
    room       BYTEA NOT NULL,
    file       BYTEA,
    created_by BYTEA NOT NULL,
    next_seq   BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (firm, room)
);

CREATE TABLE room_members (
    firm   BYTEA NOT NULL,
    room   BYTEA NOT NULL,
    member BYTEA NOT NULL,
    PRIMARY KEY (firm, room, member)
);

CREATE TABLE room_messages (
    firm       BYTEA NOT NULL,
    room       BYTEA NOT NULL,
    seq        BIGINT NOT NULL,
    sender     BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (firm, room, seq)
);

CREATE TABLE records (
    firm       BYTEA NOT NULL,
    file       BYTEA NOT NULL,
    record     BYTEA NOT NULL,
    version    BIGINT NOT NULL,
    cursor     BIGINT NOT NULL,
    author     BYTEA NOT NULL,
    envelope   BYTEA NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (firm, file, record)
);
CREATE INDEX records_by_cursor ON records (firm, file, cursor);

CREATE TABLE member_key_wraps (
    firm        BYTEA NOT NULL,
    member      BYTEA NOT NULL,
    key_version BIGINT NOT NULL,
    device      BYTEA NOT NULL,
    wrapped     BYTEA NOT NULL,
    cursor      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (firm, member, key_version, device)
);
CREATE INDEX member_key_wraps_by_cursor ON member_key_wraps (firm, device, cursor);

CREATE TABLE epoch_key_wraps (
    firm               BYTEA NOT NULL,
    file               BYTEA NOT NULL,
    epoch              BIGINT NOT NULL,
    holder_kind        BIGINT NOT NULL,
    holder             BYTEA NOT NULL,
    holder_key_version BIGINT NOT NULL,
    wrapped            BYTEA NOT NULL,
    cursor             BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (firm, file, epoch, holder_kind, holder)
);
CREATE INDEX epoch_key_wraps_by_cursor ON epoch_key_wraps (firm, file, holder_kind, holder, cursor);

CREATE TABLE epoch_links (
    firm    BYTEA NOT NULL,
    file    BYTEA NOT NULL,
    epoch   BIGINT NOT NULL,
    wrapped BYTEA NOT NULL,
    cursor  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (firm, file, epoch)
);
CREATE INDEX epoch_links_by_cursor ON epoch_links (firm, file, cursor);

CREATE TABLE documents (
    firm          BYTEA NOT NULL,
    document      BYTEA NOT NULL,
    file          BYTEA NOT NULL,
    epoch         BIGINT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        BYTEA NOT NULL,
    release_share BYTEA NOT NULL,
    uploaded_by   BYTEA NOT NULL,
    created_ms    BIGINT NOT NULL,
    year          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (firm, document)
);
CREATE INDEX documents_by_year ON documents (firm, file, year);

CREATE TABLE audit_leaves (
    firm BYTEA NOT NULL,
    idx  BIGINT NOT NULL,
    leaf BYTEA NOT NULL,
    PRIMARY KEY (firm, idx)
);

CREATE TABLE audit_hashes (
    firm BYTEA NOT NULL,
    idx  BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (firm, idx)
);

CREATE TABLE audit_cosigned (
    firm BYTEA NOT NULL,
    size BIGINT NOT NULL,
    note BYTEA NOT NULL,
    PRIMARY KEY (firm, size)
);

CREATE TABLE nonces (
    device     BYTEA NOT NULL,
    nonce      BYTEA NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (device, nonce)
);

CREATE TABLE invites (
    invite     BYTEA PRIMARY KEY,
    firm       BYTEA NOT NULL,
    created_by BYTEA NOT NULL,
    expires_ms BIGINT NOT NULL
);

CREATE TABLE join_requests (
    invite     BYTEA NOT NULL,
    id         BIGINT NOT NULL,
    sealed     BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (invite, id)
);

CREATE TABLE uploads (
    firm          BYTEA NOT NULL,
    document      BYTEA NOT NULL,
    file          BYTEA NOT NULL,
    epoch         BIGINT NOT NULL,
    release_share BYTEA NOT NULL,
    size          BIGINT NOT NULL,
    part_size     BIGINT NOT NULL,
    uploaded_by   BYTEA NOT NULL,
    created_ms    BIGINT NOT NULL,
    year          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (firm, document)
);

CREATE TABLE upload_parts (
    firm     BYTEA NOT NULL,
    document BYTEA NOT NULL,
    n        BIGINT NOT NULL,
    sha256   BYTEA NOT NULL,
    PRIMARY KEY (firm, document, n)
);

CREATE TABLE rotation_due (
    firm      BYTEA NOT NULL,
    file      BYTEA NOT NULL,
    min_epoch BIGINT NOT NULL,
    PRIMARY KEY (firm, file)
);

CREATE TABLE erased_files (
    firm      BYTEA NOT NULL,
    file      BYTEA NOT NULL,
    erased_ms BIGINT NOT NULL,
    PRIMARY KEY (firm, file)
);

CREATE TABLE team_key_wraps (
    firm               BYTEA NOT NULL,
    team               BYTEA NOT NULL,
    version            BIGINT NOT NULL,
    member             BYTEA NOT NULL,
    member_key_version BIGINT NOT NULL,
    wrapped            BYTEA NOT NULL,
    cursor             BIGINT NOT NULL,
    PRIMARY KEY (firm, team, version, member)
);
CREATE INDEX team_key_wraps_by_member ON team_key_wraps (firm, member, cursor);

CREATE TABLE team_rotation_due (
    firm        BYTEA NOT NULL,
    team        BYTEA NOT NULL,
    min_version BIGINT NOT NULL,
    PRIMARY KEY (firm, team)
);

CREATE TABLE backup_keys (
    firm        BYTEA NOT NULL,
    member      BYTEA NOT NULL,
    recovery_id BYTEA NOT NULL UNIQUE,
    backup_key  BYTEA NOT NULL,
    signature   BYTEA NOT NULL,
    PRIMARY KEY (firm, member)
);

CREATE TABLE backup_items (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    firm   BYTEA NOT NULL,
    member BYTEA NOT NULL,
    kind   BIGINT NOT NULL,
    item   BYTEA NOT NULL,
    sealed BYTEA NOT NULL,
    UNIQUE (firm, member, kind, item)
);
CREATE INDEX backup_items_by_member ON backup_items (firm, member, seq);

CREATE TABLE backup_escrow (
    firm       BYTEA NOT NULL,
    member     BYTEA NOT NULL,
    device     BYTEA NOT NULL,
    backup_key BYTEA NOT NULL,
    sealed     BYTEA NOT NULL,
    PRIMARY KEY (firm, member, device)
);

CREATE TABLE seq_floor (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    next_seq BIGINT NOT NULL
);
INSERT INTO seq_floor (id, next_seq) VALUES (1, 1);
