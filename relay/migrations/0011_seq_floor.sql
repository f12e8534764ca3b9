-- The first sequence number of every room created from now on. A restore moves it ahead
-- by the same gap as every room's next number (relay/src/backup.rs), so that a room the
-- restored relay had lost and a device creates again never hands out numbers a device
-- already holds a cursor past.
CREATE TABLE seq_floor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq INTEGER NOT NULL
);
INSERT INTO seq_floor (id, next_seq) VALUES (1, 1);
