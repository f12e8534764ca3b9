-- Files whose keys a revocation exposed, until their new epoch exists
-- (protocol-spec/offboarding.md, "Writes wait for the new epoch"): a record or document
-- under an epoch below min_epoch is refused, so nothing new is written under a key the
-- revoked devices hold.
CREATE TABLE rotation_due (
    firm      BLOB NOT NULL,
    file      BLOB NOT NULL,
    min_epoch INTEGER NOT NULL,
    PRIMARY KEY (firm, file)
) WITHOUT ROWID;
