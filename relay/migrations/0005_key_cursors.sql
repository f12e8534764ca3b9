-- Wrapped keys are fetched incrementally (protocol-spec/relay-api.md): each row carries the
-- audit-log index of the write that stored it, so a device asks for what changed since
-- its cursor, and every fetch that delivers a key is one logged entry. Rows stored before
-- this migration have cursor 0 and reach a device on its first fetch.

ALTER TABLE member_key_wraps ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE epoch_key_wraps ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE epoch_links ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;

CREATE INDEX member_key_wraps_by_cursor ON member_key_wraps (firm, device, cursor);
CREATE INDEX epoch_key_wraps_by_cursor ON epoch_key_wraps (firm, file, member, cursor);
CREATE INDEX epoch_links_by_cursor ON epoch_links (firm, file, cursor);
