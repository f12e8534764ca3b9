-- Key backup (protocol-spec/recovery.md).
--
-- Each member has at most one backup key: an X25519 public key, signed by the member's
-- master key, under a recovery id derived from the recovery key. Items are sealed to the
-- backup key; setting a new key drops the items sealed to the old one.
CREATE TABLE backup_keys (
    firm        BLOB NOT NULL,
    member      BLOB NOT NULL,
    recovery_id BLOB NOT NULL UNIQUE,
    backup_key  BLOB NOT NULL,
    signature   BLOB NOT NULL,
    PRIMARY KEY (firm, member)
) WITHOUT ROWID;

CREATE TABLE backup_items (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    firm    BLOB NOT NULL,
    member  BLOB NOT NULL,
    kind    INTEGER NOT NULL,
    item    BLOB NOT NULL,
    sealed  BLOB NOT NULL,
    UNIQUE (firm, member, kind, item)
);
CREATE INDEX backup_items_by_member ON backup_items (firm, member, seq);

-- Admin-assisted recovery: a member's recovery key sealed to each admin device, valid
-- while the backup key it opens is the member's current one.
CREATE TABLE backup_escrow (
    firm       BLOB NOT NULL,
    member     BLOB NOT NULL,
    device     BLOB NOT NULL,
    backup_key BLOB NOT NULL,
    sealed     BLOB NOT NULL,
    PRIMARY KEY (firm, member, device)
) WITHOUT ROWID;
