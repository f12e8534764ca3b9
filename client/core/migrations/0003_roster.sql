-- The verified roster, one row per event, appended as it grows (it used to be rewritten
-- whole, as one JSON state entry, with every commit).
CREATE TABLE roster (
    seq   INTEGER PRIMARY KEY,
    event BLOB NOT NULL
);
