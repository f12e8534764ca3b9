-- Inbound Megolm sessions and their replay records, one row each, written as they are
-- added: the state a commit writes no longer grows with the history (they used to live
-- inside the `timeline` state, rewritten whole at every commit). A version 1 `timeline`
-- state is moved into these rows by the first commit after the upgrade.
CREATE TABLE megolm_sessions (
    session_id TEXT PRIMARY KEY,
    pickle     TEXT NOT NULL
) WITHOUT ROWID;

-- The message at `idx` of a session is the relay's message `seq`: the same index at
-- another position is a replay.
CREATE TABLE megolm_seen (
    session_id TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (session_id, idx)
) WITHOUT ROWID;
