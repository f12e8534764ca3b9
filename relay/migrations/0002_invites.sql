-- Invitations: a mailbox per invite id for sealed join requests (protocol-spec/invites.md).

CREATE TABLE invites (
    invite     BLOB PRIMARY KEY,
    firm       BLOB NOT NULL,
    created_by BLOB NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE join_requests (
    invite     BLOB NOT NULL,
    id         INTEGER NOT NULL,
    sealed     BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (invite, id)
) WITHOUT ROWID;
