-- Messages this device sent, as the relay acknowledged them: after a relay restore lost
-- them, the device posts the same ciphertext again (protocol-spec/operations.md).
CREATE TABLE sent (
    room       BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
