//! `audit-bench`: verify an audit bundle of N entries (default 1,000,000) offline, the way
//! `ledgerline audit verify` does — streamed from a file through `ledgerline_audit::Verifier`
//! — against the raw ceiling measured in the same run: `ed25519_dalek::verify_batch` over
//! the very same signatures, in batches of the same size, with the messages prebuilt in
//! memory. Prints entries/s, the ratio, and the verifier's peak RSS.
//!
//!     cargo run --release -p ledgerline-bench --bin audit-bench -- --entries 1000000
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod rss;

use clap::Parser;
use ledgerline_audit::{Header, Line, Options, Verifier, FORMAT};
use ledgerline_protocol::audit::{AuditLeaf, Subject, SubjectKind};
use ledgerline_protocol::checkpoint::Checkpoint;
use ledgerline_protocol::ids::{DeviceId, FirmId, MemberId};
use ledgerline_protocol::keys::{
    DeviceSigningKey, DeviceWrapSecret, LogSigningKey, MasterSigningKey, VerifyingKey,
};
use ledgerline_protocol::merkle;
use ledgerline_protocol::request::RequestHead;
use ledgerline_protocol::roster::{
    DeviceCertificate, DeviceKeys, EventBody, EventKind, Role, RosterEvent,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rss::{peak_rss_mib, reset_peak_rss};
use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

/// Audit-bundle verification against raw Ed25519 batch verification.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Entries in the bundle.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Devices signing them (one member each).
    #[arg(long, default_value_t = 20)]
    devices: usize,
    /// A checkpoint every this many entries.
    #[arg(long, default_value_t = 100_000)]
    checkpoint_every: u64,
    /// Work directory (the bundle takes ~570 bytes per entry); a temporary one if absent.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const T0: u64 = 1_780_000_000_000;
const ORIGIN: &str = "bench.example/ledgerline/firm/bench";

struct Firm {
    id: FirmId,
    events: Vec<RosterEvent>,
    devices: Vec<(DeviceId, DeviceSigningKey)>,
}

fn firm(rng: &mut ChaCha20Rng, devices: usize) -> Firm {
    let id = FirmId::random(rng);
    let owner = (MemberId::random(rng), MasterSigningKey::generate(rng));
    let mut events: Vec<RosterEvent> = Vec::new();
    let push = |kind: EventKind, events: &mut Vec<RosterEvent>| {
        let prev = events.last().map(RosterEvent::hash).unwrap_or([0; 32]);
        let e = EventBody {
            firm: id,
            seq: events.len() as u64,
            prev,
            timestamp_ms: T0,
            signer: owner.0,
            kind,
        }
        .sign(&owner.1);
        events.push(e);
    };
    push(
        EventKind::Genesis {
            owner_key: owner.1.verifying_key(),
        },
        &mut events,
    );
    let mut devs = Vec::new();
    for i in 0..devices {
        let member = if i == 0 {
            owner.clone()
        } else {
            let m = (MemberId::random(rng), MasterSigningKey::generate(rng));
            push(
                EventKind::MemberAdded {
                    member: m.0,
                    master_key: m.1.verifying_key(),
                    role: Role::Member,
                },
                &mut events,
            );
            m
        };
        let d = DeviceId::random(rng);
        let key = DeviceSigningKey::generate(rng);
        let keys = DeviceKeys {
            signing: key.verifying_key(),
            identity: [7; 32],
            wrap: DeviceWrapSecret::generate(rng).public_key(),
        };
        let cert = DeviceCertificate::issue(id, member.0, d, keys, &member.1);
        push(EventKind::DeviceAdded(cert), &mut events);
        devs.push((d, key));
    }
    Firm {
        id,
        events,
        devices: devs,
    }
}

/// The request of entry `i`: a document download, one every 10 ms.
fn leaf(f: &Firm, rng: &mut ChaCha20Rng, i: u64) -> Vec<u8> {
    let (device, key) = &f.devices[(i % f.devices.len() as u64) as usize];
    let t = T0 + 60_000 + 10 * i;
    let (file, doc) = ([(i % 150) as u8; 16], (i as u128).to_be_bytes());
    let path = format!(
        "/v1/files/{}/documents/{}",
        hex::encode(file),
        hex::encode(doc)
    );
    let request = RequestHead::new(f.id, *device, "GET", &path, t, b"", rng)
        .unwrap()
        .sign(key);
    AuditLeaf {
        firm: f.id,
        received_ms: t + 3,
        request,
        subjects: vec![
            Subject {
                kind: SubjectKind::File,
                id: file,
            },
            Subject {
                kind: SubjectKind::Document,
                id: doc,
            },
        ],
        body: None,
    }
    .normalise()
    .to_bytes()
}

fn main() {
    let args = Args::parse();
    let tmp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let f = firm(&mut rng, args.devices);
    let log_key = LogSigningKey::generate(&mut rng);

    // Generate: entries to a side file, leaf hashes kept for the checkpoints' roots.
    let t = Instant::now();
    let entries_path = tmp.path().join("entries");
    let mut hashes = Vec::with_capacity(args.entries as usize);
    {
        let mut w = BufWriter::new(std::fs::File::create(&entries_path).unwrap());
        for i in 0..args.entries {
            let bytes = leaf(&f, &mut rng, i);
            hashes.push(merkle::leaf_hash(&bytes));
            writeln!(w, "{}", Line::Entry(hex::encode(&bytes)).to_json()).unwrap();
        }
        w.flush().unwrap();
    }
    let bundle_path = tmp.path().join("bundle.jsonl");
    {
        let mut w = BufWriter::new(std::fs::File::create(&bundle_path).unwrap());
        let mut put = |l: Line| writeln!(w, "{}", l.to_json()).unwrap();
        put(Line::Header(Header {
            bundle: FORMAT.into(),
            firm: f.id.to_hex(),
            origin: ORIGIN.into(),
            log_key: hex::encode(log_key.verifying_key().as_bytes()),
            size: args.entries,
            from_ms: None,
            to_ms: None,
            exported_ms: T0,
        }));
        for e in &f.events {
            put(Line::Roster(hex::encode(e.to_bytes())));
        }
        let mut sizes: Vec<u64> = (1..=args.entries / args.checkpoint_every.max(1))
            .map(|k| k * args.checkpoint_every)
            .collect();
        if sizes.last() != Some(&args.entries) {
            sizes.push(args.entries);
        }
        for s in sizes {
            let root = merkle::root(&hashes[..s as usize]);
            let note = Checkpoint::new(ORIGIN, s, root).unwrap().sign(&log_key);
            put(Line::Checkpoint(String::from_utf8(note).unwrap()));
        }
        let mut r = std::io::BufReader::new(std::fs::File::open(&entries_path).unwrap());
        std::io::copy(&mut r, &mut w).unwrap();
        w.flush().unwrap();
    }
    drop(hashes);
    std::fs::remove_file(&entries_path).unwrap();
    let bundle_mb = std::fs::metadata(&bundle_path).unwrap().len() as f64 / 1e6;
    let generated_s = t.elapsed().as_secs_f64();

    // The verifier, streamed from the file, as `ledgerline audit verify` runs it.
    let measure = |strict: bool| {
        reset_peak_rss();
        let t = Instant::now();
        let mut v = Verifier::new(Options {
            strict,
            ..Options::default()
        });
        let mut rows = 0u64;
        let file =
            std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&bundle_path).unwrap());
        for line in file.lines() {
            rows += v.line(&line.unwrap()).unwrap().len() as u64;
        }
        let (summary, last) = v.finish().unwrap();
        rows += last.len() as u64;
        assert_eq!((summary.entries, rows), (args.entries, args.entries));
        (
            args.entries as f64 / t.elapsed().as_secs_f64(),
            peak_rss_mib(),
        )
    };
    let (batched, rss_batched) = measure(false);
    let (strict, rss_strict) = measure(true);

    // Raw ceiling: dalek batch verification of the same signatures, messages prebuilt in
    // memory (measured last: its hundreds of MB would otherwise stay in the RSS above).
    let mut raw: Vec<(Vec<u8>, [u8; 64], VerifyingKey)> = Vec::with_capacity(args.entries as usize);
    let file = std::io::BufReader::new(std::fs::File::open(&bundle_path).unwrap());
    for line in file.lines() {
        if let Ok(Line::Entry(h)) = serde_json::from_str::<Line>(&line.unwrap()) {
            let l = AuditLeaf::from_bytes(&hex::decode(h).unwrap()).unwrap();
            let key = f
                .devices
                .iter()
                .find(|(d, _)| *d == l.request.head.device)
                .unwrap()
                .1
                .verifying_key();
            let mut msg = b"ledgerline/v1/request\0".to_vec();
            msg.extend_from_slice(&l.request.head.signature_base());
            raw.push((msg, l.request.signature, key));
        }
    }
    let t = Instant::now();
    for chunk in raw.chunks(64) {
        let msgs: Vec<&[u8]> = chunk.iter().map(|(m, _, _)| m.as_slice()).collect();
        let sigs: Vec<ed25519_dalek::Signature> = chunk
            .iter()
            .map(|(_, s, _)| ed25519_dalek::Signature::from_bytes(s))
            .collect();
        let keys: Vec<VerifyingKey> = chunk.iter().map(|(_, _, k)| *k).collect();
        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).unwrap();
    }
    let raw_rate = args.entries as f64 / t.elapsed().as_secs_f64();

    println!(
        "audit bundle: {} entries by {} devices, {} checkpoints' worth, {bundle_mb:.0} MB (generated in {generated_s:.1} s)",
        args.entries,
        args.devices,
        args.entries / args.checkpoint_every.max(1)
    );
    println!();
    println!("| step | entries/s | ratio to raw batch verify | peak RSS |");
    println!("|---|---:|---:|---:|");
    println!("| raw ed25519-dalek verify_batch, 64 per batch, messages in memory (ceiling) | {raw_rate:.0} | 1.00 | |");
    println!(
        "| verifier, batches of 64 (streamed: parse, decode, roster, order, replay, Merkle) | {batched:.0} | {:.2} | {rss_batched:.1} MiB |",
        batched / raw_rate
    );
    println!(
        "| verifier, --strict (one verify_strict per entry) | {strict:.0} | {:.2} | {rss_strict:.1} MiB |",
        strict / raw_rate
    );
}
