//! `doc-bench`: encrypt and upload a large document through the client core to a real
//! relay over loopback (both in this process; multipart, 4 MiB parts), then download,
//! verify and decrypt it.
//! Reports MB/s, the ratio to raw ChaCha20-Poly1305 sealing of the same bytes measured in
//! the same run, the ratio to the lower of that and a durable write (write + fsync) of the
//! same bytes to the same disk, and the process's peak RSS (client and relay together).
//!
//!     cargo run --release -p ledgerline-bench --bin doc-bench -- --mib 1024
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use clap::Parser;
use ledgerline_client_core::profile::{Profile, Progress, Unlock};
use ledgerline_relay::config::Config;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// Document throughput against the raw AEAD ceiling.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Document size in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Work directory (needs about 3× the document size free); a temporary one if absent.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

mod rss;
use rss::{peak_rss_mib, reset_peak_rss};

/// Raw ceiling: seal `bytes` in 64 KiB chunks in memory, one buffer reused (one run).
fn raw_aead_mb_s(bytes: u64) -> f64 {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = vec![0x5au8; 64 * 1024];
    let chunks = bytes / (64 * 1024);
    let t = Instant::now();
    for i in 0..chunks {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&i.to_be_bytes());
        let tag = cipher
            .encrypt_in_place_detached(&nonce.into(), &[], &mut buf)
            .unwrap();
        std::hint::black_box(&tag);
    }
    bytes as f64 / 1e6 / t.elapsed().as_secs_f64()
}

/// The other per-byte cost of an upload, measured alike: SHA-256 (with SHA-NI where the
/// CPU has it), once on the client and once on the relay.
fn raw_sha256_mb_s(bytes: u64) -> f64 {
    use sha2::Digest;
    let buf = vec![0x5au8; 64 * 1024];
    let mut h = sha2::Sha256::new();
    let t = Instant::now();
    for _ in 0..bytes / (64 * 1024) {
        h.update(&buf);
    }
    std::hint::black_box(h.finalize());
    bytes as f64 / 1e6 / t.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let tmp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir)).unwrap();
    let bytes = args.mib << 20;

    // The relay, with room for the document.
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: tmp.path().join("relay"),
        max_document_bytes: bytes + (1 << 20) * 2,
        ..Config::default()
    };
    let relay = ledgerline_relay::server::Running::start(config)
        .await
        .unwrap();
    let addr = relay.addr;

    let unlock = || Unlock::Passphrase(zeroize::Zeroizing::new("bench".to_owned()));
    let mut p = Profile::create_firm(
        &tmp.path().join("owner"),
        unlock(),
        &format!("http://{addr}"),
        "Bench",
        "Owner",
    )
    .await
    .unwrap();
    let file = p.create_file("Benchmark sp. z o.o.").await.unwrap();

    let src = tmp.path().join("document.bin");
    // Writing the source is the other ceiling: a durable write of the same bytes to the
    // same disk (what the relay must do before it confirms the upload).
    let disk = {
        let t = Instant::now();
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let block = vec![0xa5u8; 1 << 20];
        for _ in 0..args.mib {
            f.write_all(&block).unwrap();
        }
        // On disk before the upload is timed, as a user's file would be (its write-back
        // would otherwise compete with the measurements).
        f.into_inner().unwrap().sync_all().unwrap();
        bytes as f64 / 1e6 / t.elapsed().as_secs_f64()
    };
    let rss_before = peak_rss_mib();

    // The machine's steady rate: best of three.
    let raw = (0..3).map(|_| raw_aead_mb_s(bytes)).fold(0f64, f64::max);
    let raw_sha = (0..3).map(|_| raw_sha256_mb_s(bytes)).fold(0f64, f64::max);
    let quiet: Progress = Arc::new(|_, _, _| {});
    // When the last part left (the rest is the relay's completion and the manifest).
    let t = Instant::now();
    let last_part = Arc::new(std::sync::Mutex::new(0f64));
    let mark = last_part.clone();
    let timed: Progress = Arc::new(move |_, done, total| {
        if done == total {
            if let Ok(mut m) = mark.lock() {
                *m = t.elapsed().as_secs_f64();
            }
        }
    });
    reset_peak_rss();
    let m = p.upload_document(file, &src, None, timed).await.unwrap();
    let total_s = t.elapsed().as_secs_f64();
    let up = bytes as f64 / 1e6 / total_s;
    let sent_s = *last_part.lock().unwrap();
    let rss_up = peak_rss_mib();
    std::fs::remove_file(&src).unwrap();

    let out = tmp.path().join("back.bin");
    let t = Instant::now();
    p.download_document(file, m.document, &out, quiet)
        .await
        .unwrap();
    let down = bytes as f64 / 1e6 / t.elapsed().as_secs_f64();
    assert_eq!(std::fs::metadata(&out).unwrap().len(), bytes);
    let rss_all = peak_rss_mib();

    println!(
        "document: {} MiB, 64 KiB chunks, relay on loopback in this process",
        args.mib
    );
    println!();
    // The upload can go no faster than the slower of its two ceilings.
    let floor = raw.min(disk);
    println!("| step | MB/s | ratio to raw AEAD | ratio to min(AEAD, disk) |");
    println!("|---|---:|---:|---:|");
    println!("| raw ChaCha20-Poly1305 seal (ceiling) | {raw:.0} | 1.00 | |");
    println!(
        "| raw durable write, write + fsync (ceiling) | {disk:.0} | {:.2} | |",
        disk / raw
    );
    println!(
        "| raw SHA-256 (for scale: each byte is hashed on both sides) | {raw_sha:.0} | {:.2} | |",
        raw_sha / raw
    );
    println!(
        "| encrypt + upload in 4 MiB parts (client and relay) | {up:.0} | {:.2} | {:.2} |",
        up / raw,
        up / floor
    );
    println!(
        "| release + download + verify + decrypt | {down:.0} | {:.2} | {:.2} |",
        down / raw,
        down / floor
    );
    println!();
    println!(
        "upload: parts encrypted and sent in {sent_s:.2} s, completion (root check, rename) and manifest {:.2} s",
        total_s - sent_s
    );
    println!();
    println!(
        "peak RSS while moving the document (client + relay, whole process; high-water mark reset after setup): {rss_all:.1} MiB (upload alone: {rss_up:.1} MiB; setup, incl. the 64 MiB Argon2id store unlock: {rss_before:.1} MiB)"
    );
    relay.stop().await.unwrap();
}
