//! `sync-bench`: the real receive path. One profile posts N Megolm messages to a customer
//! file through a relay on loopback (in this process); a second profile then catches up
//! with `Profile::sync` — pages of 500 over HTTP, Megolm decryption, the SQLCipher store
//! with FTS5, and the profile's own state committed with every page. Compared with raw
//! vodozemac decryption of as many messages of the same size, measured in the same run.
//!
//!     cargo run --release -p ledgerline-bench --bin sync-bench -- --messages 10000
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod inproc;

use clap::Parser;
use ledgerline_client_core::profile::{Conversation, Profile};
use ledgerline_client_core::room::{OutboundRoom, RoomEvent};
use ledgerline_protocol::ids::{DeviceId, FileId};
use ledgerline_protocol::roster::Role;
use std::collections::BTreeSet;
use std::time::Instant;
use vodozemac::megolm::{InboundGroupSession, MegolmMessage, SessionConfig, SessionKey};

/// The receive path against raw vodozemac.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Messages in the file's conversation.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
}

fn body(i: usize) -> String {
    format!(
        "Wiadomość {i}: proszę o przesłanie faktur za marzec do 10. kwietnia, dziękuję. {}",
        "x".repeat(100)
    )
}

/// Raw ceiling: vodozemac decrypts `n` messages of the same size, sessions of 100.
fn raw_decrypt_rate(n: usize) -> f64 {
    let sender = DeviceId([1; 16]);
    let mut keys = Vec::new();
    let mut messages = Vec::new();
    let mut out = OutboundRoom::new([7; 16], 0);
    keys.push(out.share(sender, &BTreeSet::from([sender])));
    for i in 0..n {
        if out.needs_rotation(&BTreeSet::from([sender]), 0) {
            out = OutboundRoom::new([7; 16], 0);
            keys.push(out.share(sender, &BTreeSet::from([sender])));
        }
        let w = out.encrypt(&RoomEvent::Text {
            body: body(i),
            reply_to: None,
        });
        let len = usize::from(w[1]);
        messages.push((
            keys.len() - 1,
            MegolmMessage::from_bytes(&w[2 + len..]).unwrap(),
        ));
    }
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
    for (k, m) in &messages {
        std::hint::black_box(sessions[*k].decrypt(m).unwrap());
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Sends `n` texts to `file`'s conversation, one at a time; messages per second.
async fn sends_per_second(p: &mut Profile, file: FileId, n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        p.send(
            Conversation::File(file),
            RoomEvent::Text {
                body: body(i),
                reply_to: None,
            },
        )
        .await
        .unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let tmp = tempfile::tempdir().unwrap();
    let (relay, url) = inproc::relay(tmp.path()).await;

    // A firm of two; the file is granted to both.
    let mut owner = inproc::owner(tmp.path(), &url).await;
    let code = owner.invite("Anna", Role::Member).await.unwrap();
    let (mut anna, fp) = Profile::join(
        &tmp.path().join("anna"),
        inproc::unlock(),
        &url,
        &code,
        "Anna",
    )
    .await
    .unwrap();
    owner.approve("Anna", &fp).await.unwrap();
    anna.sync().await.unwrap();
    let file = owner.create_file("Benchmark sp. z o.o.").await.unwrap();
    let anna_id = anna.member();
    owner.grant(file, anna_id).await.unwrap();
    anna.sync().await.unwrap();

    let send_rate = sends_per_second(&mut owner, file, args.messages).await;

    let start = Instant::now();
    let report = anna.sync().await.unwrap();
    let sync_rate = args.messages as f64 / start.elapsed().as_secs_f64();
    assert_eq!(report.messages, args.messages, "{report:?}");
    assert_eq!(report.waiting, 0);
    // The reader answers: every send commits its state twice (outbox, then sent), after
    // it has read the whole history. A commit writes what changed, so this should not
    // fall below the writer's rate above, whose own history is empty.
    const REPLIES: usize = 200;
    let reply_rate = sends_per_second(&mut anna, file, REPLIES).await;
    let raw = (0..3)
        .map(|_| raw_decrypt_rate(args.messages))
        .fold(0f64, f64::max);

    println!(
        "sync-bench: {} messages (~200 B text) in one customer file, relay on loopback in this process",
        args.messages
    );
    println!();
    println!("| path | messages/s | ratio to raw decrypt |");
    println!("|---|---:|---:|");
    println!("| raw vodozemac InboundGroupSession::decrypt (ceiling) | {raw:.0} | 1.00 |");
    println!(
        "| Profile::sync: fetch (HTTP, pages of 500) + decrypt + store (SQLCipher, FTS5) + state | {sync_rate:.0} | {:.2} |",
        sync_rate / raw
    );
    println!(
        "| Profile::send (roster check, Megolm encrypt, outbox commit, POST) | {send_rate:.0} | {:.2} |",
        send_rate / raw
    );
    println!(
        "| Profile::send by the reader after reading all {} ({REPLIES} replies) | {reply_rate:.0} | {:.2} |",
        args.messages,
        reply_rate / raw
    );
    relay.stop().await.unwrap();
}
