-- The audit log's Merkle tree (protocol-spec/audit-log.md): the hashes RFC 6962 needs for
-- roots and proofs, in the "stored hash" layout of Go's tlog (tlog_tiles crate): leaf n's
-- hash and the subtrees it completes are stored from stored_hash_index(0, n) on, written
-- in the same transaction as the leaf. Existing leaves are hashed when this migration runs.
-- Witness-cosigned checkpoints, one per tree size, as the witness returned them.

CREATE TABLE audit_hashes (
    firm BLOB NOT NULL,
    idx  INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (firm, idx)
) WITHOUT ROWID;

CREATE TABLE audit_cosigned (
    firm BLOB NOT NULL,
    size INTEGER NOT NULL,
    note BLOB NOT NULL,
    PRIMARY KEY (firm, size)
) WITHOUT ROWID;
