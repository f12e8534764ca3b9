-- Customer files erased by an admin (GDPR erasure, protocol-spec/work.md "Erasure"):
-- their ciphertext, wrapped keys, chain links and conversation are deleted in the same
-- transaction; this row keeps the file refused (410) for good.
CREATE TABLE erased_files (
    firm      BLOB NOT NULL,
    file      BLOB NOT NULL,
    erased_ms INTEGER NOT NULL,
    PRIMARY KEY (firm, file)
) WITHOUT ROWID;
