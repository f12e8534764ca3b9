//! Room history pages in binary form (`protocol-spec/relay-api.md`, "History pages").
//!
//! A device catching up on a room reads its messages in pages. The JSON answer carries each
//! ciphertext as hex inside an object; this form carries the same fields as fixed-width
//! integers and a length-prefixed ciphertext, so neither side hex-encodes, builds or parses
//! a JSON object per message. The relay sends it when the request's `Accept` header names
//! [`MEDIA_TYPE`].
//!
//! Every byte of a page comes from the relay and is untrusted: the decoder bounds the count
//! and every length before allocating, and refuses a page whose sequence numbers do not
//! strictly ascend (a relay that repeats or reorders messages would otherwise move a
//! reader's cursor backwards).

use crate::encoding::{DecodeError, Reader, Writer};
use crate::ids::DeviceId;
use crate::PROTOCOL_VERSION;

/// The media type a device puts in `Accept` to get a page in this form.
pub const MEDIA_TYPE: &str = "application/vnd.ledgerline.history-page";

/// The largest room message ciphertext the relay accepts and a page may carry (1 MiB).
/// Chat messages are a few hundred bytes; documents travel as documents.
pub const ROOM_MESSAGE_MAX_BYTES: usize = 1 << 20;

/// The most messages one page may carry.
pub const PAGE_MESSAGES_MAX: usize = 10_000;

/// A page ends early once its ciphertexts pass this many bytes (it always holds at least
/// one message), so that a page of large messages stays a bounded answer.
pub const PAGE_SOFT_BYTES: usize = 4 << 20;

/// Bytes a message costs in a page besides its ciphertext.
const PER_MESSAGE: usize = 8 + 16 + 8 + 4;

/// One message of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMessage {
    /// The message's position in the room (strictly ascending within a page).
    pub seq: u64,
    /// The sending device, as the relay states it (the timeline checks it).
    pub sender: DeviceId,
    /// When the relay accepted it (ms since the Unix epoch, the relay's clock).
    pub created_ms: u64,
    /// Megolm ciphertext in the room wire format (1 to [`ROOM_MESSAGE_MAX_BYTES`] bytes).
    pub ciphertext: Vec<u8>,
}

/// A page of a room's history and the number the room's next message will get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The sequence number the room's next message will get.
    pub next: u64,
    /// The messages, in ascending order.
    pub messages: Vec<PageMessage>,
}

impl HistoryPage {
    /// The canonical encoding:
    /// `version(1) || next(u64) || count(u32) || count × (seq(u64) || sender(16) ||
    /// created_ms(u64) || ciphertext(var))`.
    ///
    /// The encoder writes what it is given; the relay only stores messages within the
    /// limits, and [`HistoryPage::from_bytes`] refuses anything else.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body: usize = self
            .messages
            .iter()
            .map(|m| PER_MESSAGE + m.ciphertext.len())
            .sum();
        let mut w = Writer::with_capacity(1 + 8 + 4 + body);
        w.u8(PROTOCOL_VERSION)
            .u64(self.next)
            .u32(u32::try_from(self.messages.len()).unwrap_or(u32::MAX));
        for m in &self.messages {
            w.u64(m.seq)
                .fixed(&m.sender.0)
                .u64(m.created_ms)
                .var(&m.ciphertext);
        }
        w.finish()
    }

    /// Decodes a page, refusing trailing bytes, a count over [`PAGE_MESSAGES_MAX`], an empty
    /// or oversized ciphertext, and sequence numbers that do not strictly ascend.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let next = r.u64("next")?;
        let count = r.u32("count")? as usize;
        if count > PAGE_MESSAGES_MAX {
            return Err(DecodeError::TooLong {
                field: "count",
                len: count,
                max: PAGE_MESSAGES_MAX,
            });
        }
        // Never reserve more than the input could hold: a short page with a large count
        // fails on truncation, not on allocation.
        let mut messages = Vec::with_capacity(count.min(bytes.len() / PER_MESSAGE));
        let mut last: Option<u64> = None;
        for _ in 0..count {
            let seq = r.u64("seq")?;
            if last.is_some_and(|l| seq <= l) {
                return Err(DecodeError::InvalidValue("seq"));
            }
            last = Some(seq);
            let sender = DeviceId(r.array("sender")?);
            let created_ms = r.u64("created_ms")?;
            let ciphertext = r.var("ciphertext", ROOM_MESSAGE_MAX_BYTES)?;
            if ciphertext.is_empty() {
                return Err(DecodeError::InvalidValue("ciphertext"));
            }
            messages.push(PageMessage {
                seq,
                sender,
                created_ms,
                ciphertext: ciphertext.to_vec(),
            });
        }
        r.finish()?;
        Ok(Self { next, messages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn page(seqs: &[u64]) -> HistoryPage {
        HistoryPage {
            next: seqs.last().map_or(1, |s| s + 1),
            messages: seqs
                .iter()
                .map(|&seq| PageMessage {
                    seq,
                    sender: DeviceId([seq as u8; 16]),
                    created_ms: 1_764_000_000_000 + seq,
                    ciphertext: vec![0xa5; 1 + (seq as usize % 300)],
                })
                .collect(),
        }
    }

    #[test]
    fn layout_is_the_documented_one() {
        let p = HistoryPage {
            next: 9,
            messages: vec![PageMessage {
                seq: 8,
                sender: DeviceId([0x11; 16]),
                created_ms: 0x0102,
                ciphertext: b"ct".to_vec(),
            }],
        };
        let b = p.to_bytes();
        let mut want = vec![1u8];
        want.extend_from_slice(&9u64.to_be_bytes());
        want.extend_from_slice(&1u32.to_be_bytes());
        want.extend_from_slice(&8u64.to_be_bytes());
        want.extend_from_slice(&[0x11; 16]);
        want.extend_from_slice(&0x0102u64.to_be_bytes());
        want.extend_from_slice(&2u32.to_be_bytes());
        want.extend_from_slice(b"ct");
        assert_eq!(b, want);
        assert_eq!(HistoryPage::from_bytes(&b).unwrap(), p);
    }

    #[test]
    fn an_empty_page_round_trips() {
        let p = page(&[]);
        assert_eq!(HistoryPage::from_bytes(&p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn repeated_or_descending_sequence_numbers_are_refused() {
        for seqs in [&[3u64, 3][..], &[5, 4], &[1, 2, 2]] {
            assert_eq!(
                HistoryPage::from_bytes(&page(seqs).to_bytes()),
                Err(DecodeError::InvalidValue("seq")),
                "{seqs:?}"
            );
        }
    }

    #[test]
    fn an_empty_ciphertext_is_refused() {
        let mut p = page(&[1]);
        p.messages[0].ciphertext.clear();
        assert_eq!(
            HistoryPage::from_bytes(&p.to_bytes()),
            Err(DecodeError::InvalidValue("ciphertext"))
        );
    }

    #[test]
    fn counts_and_lengths_are_bounded_before_allocation() {
        let mut b = page(&[]).to_bytes();
        b[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            HistoryPage::from_bytes(&b),
            Err(DecodeError::TooLong { field: "count", .. })
        ));
        b[9..13].copy_from_slice(&(PAGE_MESSAGES_MAX as u32).to_be_bytes());
        assert_eq!(
            HistoryPage::from_bytes(&b),
            Err(DecodeError::Truncated("seq"))
        );
        let mut one = page(&[1]).to_bytes();
        let at = 1 + 8 + 4 + 8 + 16 + 8;
        one[at..at + 4].copy_from_slice(&(ROOM_MESSAGE_MAX_BYTES as u32 + 1).to_be_bytes());
        assert!(matches!(
            HistoryPage::from_bytes(&one),
            Err(DecodeError::TooLong {
                field: "ciphertext",
                ..
            })
        ));
    }

    #[test]
    fn wrong_version_and_trailing_bytes_are_refused() {
        let mut b = page(&[1, 2]).to_bytes();
        b[0] = 2;
        assert_eq!(
            HistoryPage::from_bytes(&b),
            Err(DecodeError::UnsupportedVersion(2))
        );
        let mut b = page(&[1, 2]).to_bytes();
        b.push(0);
        assert_eq!(
            HistoryPage::from_bytes(&b),
            Err(DecodeError::TrailingBytes(1))
        );
        // A JSON answer is not a page.
        assert!(HistoryPage::from_bytes(b"{\"messages\":[]}").is_err());
    }

    proptest! {
        #[test]
        fn round_trip(start in 0u64..1_000_000, gaps in proptest::collection::vec(1u64..5, 0..40)) {
            let mut seqs = Vec::new();
            let mut s = start;
            for g in gaps {
                s += g;
                seqs.push(s);
            }
            let p = page(&seqs);
            prop_assert_eq!(HistoryPage::from_bytes(&p.to_bytes()).unwrap(), p);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(p) = HistoryPage::from_bytes(&bytes) {
                prop_assert_eq!(p.to_bytes(), bytes);
            }
        }
    }
}
