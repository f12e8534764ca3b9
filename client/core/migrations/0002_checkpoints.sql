-- Every audit-log checkpoint this device accepted (signed by the pinned log key and
-- consistent with the one before), kept as the relay's signed note: the device's archive
-- for the owner's export and the witness.
CREATE TABLE checkpoints (
    size    INTEGER PRIMARY KEY,
    note    TEXT NOT NULL,
    seen_ms INTEGER NOT NULL
);
