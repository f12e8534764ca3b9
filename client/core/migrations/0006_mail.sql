-- Mail intake (protocol-spec/mail.md), all on this device.
-- `mailboxes`: the folders this device reads and where reading stands. `secret` holds the
-- password only when the OS has no keyring (the store itself is encrypted at rest).
CREATE TABLE mailboxes (
    label        TEXT PRIMARY KEY,
    config       TEXT NOT NULL,
    secret       TEXT,
    uid_validity INTEGER,
    last_uid     INTEGER NOT NULL DEFAULT 0
);

-- Every message read, by digest: where it went (`file:HEX`, `inbox`), so that a second
-- run, a UIDVALIDITY change or a second folder delivering the same message never imports
-- it twice. `docs` lists the attachments already uploaded while an import is unfinished.
CREATE TABLE mail_seen (
    digest BLOB PRIMARY KEY,
    placed TEXT NOT NULL,
    docs   TEXT,
    at_ms  INTEGER NOT NULL
) WITHOUT ROWID;

-- Mail no rule placed, kept whole until someone assigns it to a customer file.
CREATE TABLE mail_inbox (
    digest  BLOB PRIMARY KEY,
    mailbox TEXT NOT NULL,
    raw     BLOB NOT NULL,
    reason  TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
) WITHOUT ROWID;

-- Messages that could not be read, with the reason (shown by `mail status`).
CREATE TABLE mail_failed (
    mailbox      TEXT NOT NULL,
    uid_validity INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    PRIMARY KEY (mailbox, uid_validity, uid)
);
