-- Teams (protocol-spec/roster.md "Teams", key-hierarchy.md "Team keys").
--
-- An epoch key is held by a member or by a team: its wrap names the holder's kind
-- (1 member, 2 team) and id. The table is rebuilt because the kind joins the primary key.
CREATE TABLE epoch_key_wraps_new (
    firm               BLOB NOT NULL,
    file               BLOB NOT NULL,
    epoch              INTEGER NOT NULL,
    holder_kind        INTEGER NOT NULL,
    holder             BLOB NOT NULL,
    holder_key_version INTEGER NOT NULL,
    wrapped            BLOB NOT NULL,
    cursor             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (firm, file, epoch, holder_kind, holder)
) WITHOUT ROWID;
INSERT INTO epoch_key_wraps_new
    SELECT firm, file, epoch, 1, member, holder_key_version, wrapped, cursor FROM epoch_key_wraps;
DROP TABLE epoch_key_wraps;
ALTER TABLE epoch_key_wraps_new RENAME TO epoch_key_wraps;
CREATE INDEX epoch_key_wraps_by_cursor ON epoch_key_wraps (firm, file, holder_kind, holder, cursor);

-- A team's key, per version, wrapped under the member key of each holder (its members and
-- the firm's admins). A version is stored whole; single wraps join the newest version.
CREATE TABLE team_key_wraps (
    firm               BLOB NOT NULL,
    team               BLOB NOT NULL,
    version            INTEGER NOT NULL,
    member             BLOB NOT NULL,
    member_key_version INTEGER NOT NULL,
    wrapped            BLOB NOT NULL,
    cursor             INTEGER NOT NULL,
    PRIMARY KEY (firm, team, version, member)
) WITHOUT ROWID;
CREATE INDEX team_key_wraps_by_member ON team_key_wraps (firm, member, cursor);

-- A roster event exposed the team's key (a member left the team, a member or device was
-- revoked): no epoch key is wrapped under it again until a version >= min_version exists.
CREATE TABLE team_rotation_due (
    firm        BLOB NOT NULL,
    team        BLOB NOT NULL,
    min_version INTEGER NOT NULL,
    PRIMARY KEY (firm, team)
) WITHOUT ROWID;
