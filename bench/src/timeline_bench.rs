//! `timeline-bench`: decrypt a Megolm room timeline through the client core's `Timeline`
//! (wire parsing, sender and replay checks, JSON events) against raw vodozemac decryption
//! of the same messages, measured in the same run.
//!
//!     cargo run --release -p ledgerline-bench --bin timeline-bench -- --messages 10000
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use clap::Parser;
use ledgerline_client_core::room::{OutboundRoom, Received, RoomEvent, Timeline};
use ledgerline_client_core::store::{LocalStore, StoreKey, StoredMessage};
use ledgerline_protocol::ids::DeviceId;
use std::collections::BTreeSet;
use std::time::Instant;
use vodozemac::megolm::{InboundGroupSession, MegolmMessage, SessionConfig, SessionKey};

/// Timeline decryption throughput and its ratio to raw vodozemac.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Messages in the timeline.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Passes (the best of each is reported).
    #[arg(long, default_value_t = 3)]
    passes: usize,
}

/// Messages per transaction, as `Profile::sync` pages them.
const PAGE: usize = 200;

fn main() {
    let args = Args::parse();
    let room = [7u8; 16];
    let sender = DeviceId([1; 16]);
    // One session per 100 messages, as the rotation policy produces.
    let mut keys = Vec::new();
    let mut wire = Vec::new();
    let mut out = OutboundRoom::new(room, 0);
    keys.push(out.share(sender, &BTreeSet::from([sender])));
    for i in 0..args.messages {
        if out.needs_rotation(&BTreeSet::from([sender]), 0) {
            out = OutboundRoom::new(room, 0);
            keys.push(out.share(sender, &BTreeSet::from([sender])));
        }
        let body = format!(
            "Wiadomość {i}: proszę o przesłanie faktur za marzec do 10. kwietnia, dziękuję. {}",
            "x".repeat(100)
        );
        wire.push(out.encrypt(&RoomEvent::Text {
            body,
            reply_to: None,
        }));
    }
    let raw_messages: Vec<(usize, MegolmMessage)> = wire
        .iter()
        .map(|w| {
            let n = usize::from(w[1]);
            let sid = std::str::from_utf8(&w[2..2 + n]).unwrap();
            let k = keys.iter().position(|k| k.session_id == sid).unwrap();
            (k, MegolmMessage::from_bytes(&w[2 + n..]).unwrap())
        })
        .collect();

    let (mut best_raw, mut best_ours, mut best_stored) = (0f64, 0f64, 0f64);
    for _ in 0..args.passes {
        // Ceiling: vodozemac alone, messages already parsed, sessions already built.
        let mut sessions: Vec<InboundGroupSession> = keys
            .iter()
            .map(|k| {
                InboundGroupSession::new(
                    &SessionKey::from_base64(&k.session_key).unwrap(),
                    SessionConfig::version_1(),
                )
            })
            .collect();
        let start = Instant::now();
        let mut bytes = 0;
        for (k, m) in &raw_messages {
            bytes += sessions[*k].decrypt(m).unwrap().plaintext.len();
        }
        best_raw = best_raw.max(args.messages as f64 / start.elapsed().as_secs_f64());
        assert!(bytes > 0);

        // Ours: keys arrive first, then every message goes through the timeline.
        let mut tl = Timeline::default();
        for k in &keys {
            tl.add_key(sender, k).unwrap();
        }
        let start = Instant::now();
        for (i, w) in wire.iter().enumerate() {
            let r = tl.receive(room, i as u64 + 1, sender, w).unwrap();
            assert!(matches!(r, Received::Decrypted(_)));
        }
        best_ours = best_ours.max(args.messages as f64 / start.elapsed().as_secs_f64());

        // Decrypt and store: the timeline, then the SQLCipher store (FULL sync), a
        // transaction per page of 200 (the page `Profile::sync` fetches), with full-text
        // indexing.
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            LocalStore::open(&dir.path().join("bench.db"), &StoreKey::from_bytes([9; 32])).unwrap();
        let mut tl = Timeline::default();
        for k in &keys {
            tl.add_key(sender, k).unwrap();
        }
        let start = Instant::now();
        for (p, page) in wire.chunks(PAGE).enumerate() {
            let mut batch = Vec::with_capacity(page.len());
            for (i, w) in page.iter().enumerate() {
                let seq = (p * PAGE + i) as u64 + 1;
                let Received::Decrypted(d) = tl.receive(room, seq, sender, w).unwrap() else {
                    panic!("not decrypted")
                };
                let RoomEvent::Text { body, .. } = &d.event else {
                    panic!("not text")
                };
                let event = serde_json::to_string(&d.event).unwrap();
                batch.push((
                    StoredMessage {
                        room,
                        seq,
                        sender: sender.0,
                        event,
                        created_ms: seq,
                    },
                    Some(body.clone()),
                ));
            }
            assert_eq!(store.put_messages(&batch).unwrap(), batch.len());
        }
        best_stored = best_stored.max(args.messages as f64 / start.elapsed().as_secs_f64());
    }
    println!(
        "timeline-bench: {} Megolm messages (~200 B text), {} sessions, best of {} passes",
        args.messages,
        keys.len(),
        args.passes
    );
    println!();
    println!("| path | messages/s | ratio |");
    println!("|---|---:|---:|");
    println!("| raw vodozemac InboundGroupSession::decrypt (ceiling) | {best_raw:.0} | 1.00 |");
    println!("| client core Timeline::receive (parse, sender + replay checks, JSON event) | {best_ours:.0} | {:.2} |", best_ours / best_raw);
    println!("| decrypt and store: Timeline + SQLCipher store with FTS5, {PAGE} per transaction | {best_stored:.0} | {:.2} |", best_stored / best_raw);
}
