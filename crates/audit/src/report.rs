//! Words for the report: what a logged request did, and times.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What a logged request did, in words, from its method and path (ids stay opaque).
pub fn action(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let what = match (method, parts.as_slice()) {
        ("POST", ["v1", "roster"]) => "changed the roster",
        ("POST", ["v1", "rooms"]) => "created a room",
        ("PUT", ["v1", "rooms", _, "members"]) => "changed a room's members",
        ("POST", ["v1", "rooms", _, "messages"]) => "sent a message",
        ("GET", ["v1", "rooms", _, "messages"]) => "read conversation history",
        ("PUT", ["v1", "files", _, "records", _]) => "wrote a record",
        ("GET", ["v1", "files", _, "records"]) => "read records",
        ("PUT", ["v1", "members", _, "keys", _, _]) => "shared a member key",
        ("GET", ["v1", "devices", "self", "member-keys"]) => "fetched member keys",
        ("PUT", ["v1", "files", _, "epochs", _, "keys", _]) => "shared a file key",
        ("PUT", ["v1", "files", _, "epochs", _, "teams", _]) => "shared a file key with a team",
        ("PUT", ["v1", "teams", _, "keys", _]) => "made a new team key",
        ("PUT", ["v1", "teams", _, "keys", _, _]) => "shared a team key",
        ("GET", ["v1", "teams", "keys"]) => "fetched team keys",
        ("GET", ["v1", "files", _, "epochs", "keys"]) => "fetched file keys",
        ("PUT", ["v1", "files", _, "epochs", _, "link"])
        | ("PUT", ["v1", "files", _, "epochs", _]) => "started a new key epoch",
        ("GET", ["v1", "files", _, "epochs", "links"]) => "fetched older file keys",
        ("PUT", ["v1", "files", _, "documents", _])
        | ("POST", ["v1", "files", _, "uploads", _, "complete"]) => "uploaded a document",
        ("GET", ["v1", "files", _, "documents", _]) => "downloaded a document",
        ("POST", ["v1", "files", _, "documents", _, "release"]) => "opened a document",
        ("POST", ["v1", "audit", "opened"]) => "opened a conversation on the device",
        ("DELETE", ["v1", "files", _]) => "erased a customer file",
        _ => return format!("{method} {path}"),
    };
    what.to_owned()
}

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn format_ms(ms: u64) -> String {
    i128::from(ms)
        .checked_mul(1_000_000)
        .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(ns).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// A time given on the command line: RFC 3339 (`2026-11-01T10:00:00Z`, any offset), a date
/// (`2026-11-01`, midnight UTC) or milliseconds since the epoch.
pub fn parse_time(s: &str) -> Result<u64, String> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    let t = OffsetDateTime::parse(&full, &Rfc3339).map_err(|_| {
        format!("{s:?} is not a time: use 2026-11-01, 2026-11-01T10:00:00Z or milliseconds")
    })?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| format!("{s:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_refuse_nonsense() {
        assert_eq!(parse_time("2026-11-01").unwrap(), 1_793_491_200_000);
        assert_eq!(
            parse_time("2026-11-01T01:00:00+01:00").unwrap(),
            1_793_491_200_000
        );
        assert_eq!(parse_time("1793491200000").unwrap(), 1_793_491_200_000);
        assert_eq!(format_ms(1_793_491_200_123), "2026-11-01T00:00:00.123Z");
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("1969-12-31").is_err());
    }

    #[test]
    fn actions_read_as_words_and_unknown_ones_stay_literal() {
        assert_eq!(
            action("POST", "/v1/files/ab/documents/cd/release"),
            "opened a document"
        );
        assert_eq!(
            action("GET", "/v1/rooms/ab/messages?from=3"),
            "read conversation history"
        );
        assert_eq!(action("DELETE", "/v1/x"), "DELETE /v1/x");
        assert_eq!(
            action("PUT", "/v1/teams/ab/keys/2?holders=cd.1"),
            "made a new team key"
        );
        assert_eq!(action("PUT", "/v1/teams/ab/keys/2/cd"), "shared a team key");
        assert_eq!(action("GET", "/v1/teams/keys?since=4"), "fetched team keys");
        assert_eq!(
            action("PUT", "/v1/files/ab/epochs/3/teams/cd"),
            "shared a file key with a team"
        );
    }
}
