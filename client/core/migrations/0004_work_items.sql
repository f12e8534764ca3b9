-- Work items (customer cards, notes, tasks, events) of customer files, decrypted.
-- `body` is the item as the relay has it at `version`; a local edit not yet accepted by
-- the relay is `pending`, made from `base` (the body it started from), so that a newer
-- version from another device merges three-way instead of being overwritten.
CREATE TABLE work_items (
    file       BLOB NOT NULL,
    record     BLOB NOT NULL,
    kind       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT,
    base       TEXT,
    pending    TEXT,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (file, record)
) WITHOUT ROWID;

CREATE INDEX work_items_kind ON work_items (kind, file);
