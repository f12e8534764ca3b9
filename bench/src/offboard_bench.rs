//! `offboard-bench`: revoke a member who could read many customer files and rooms, through
//! the real client (`Profile::revoke_member`) and a relay on loopback in this process.
//! Reports the time until the relay refuses the member, the time until every file has a
//! new epoch and every room session of the admin's device is replaced, with a breakdown,
//! and the raw ceilings measured in the same run (symmetric wraps and Olm encryptions).
//!
//!     cargo run --release -p ledgerline-bench --bin offboard-bench -- --files 1000 --rooms 100 --members 50
//!
//! With `--teams N` the leaver reaches the files through N teams (files granted to the
//! teams round-robin, the leaver and `--per-file` others in each team) instead of direct
//! grants: the revocation then also gives each team key a new version.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod inproc;

use clap::Parser;
use ledgerline_client_core::profile::{Conversation, Profile};
use ledgerline_client_core::room::RoomEvent;
use ledgerline_protocol::ids::{FileId, FirmId, MemberId};
use ledgerline_protocol::keys::{EpochKey, MemberKey};
use ledgerline_protocol::roster::Role;
use ledgerline_protocol::wrap::{
    chain_epoch_key, wrap_epoch_key, EpochChainContext, EpochKeyContext, Holder,
};
use rand_chacha::rand_core::SeedableRng;
use std::time::Instant;
use vodozemac::olm::{Account, SessionConfig};

/// A leaver with many files and rooms.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Customer files the leaver could read.
    #[arg(long, default_value_t = 1_000)]
    files: usize,
    /// Rooms the leaver was in (each with every remaining device).
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Remaining members (one device each) besides the admin.
    #[arg(long, default_value_t = 50)]
    members: usize,
    /// Remaining members with access to each file (besides the admin).
    #[arg(long, default_value_t = 3)]
    per_file: usize,
    /// Reach the files through this many teams instead of direct grants (0: no teams).
    #[arg(long, default_value_t = 0)]
    teams: usize,
}

/// Raw ceiling: epoch-key wraps (and links, the same construction) per second.
fn raw_wraps_per_s(n: usize) -> f64 {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let mk = MemberKey::generate(&mut rng);
    let old = EpochKey::generate(&mut rng);
    let new = EpochKey::generate(&mut rng);
    let start = Instant::now();
    for i in 0..n {
        let file = FileId([(i % 251) as u8; 16]);
        if i % 5 == 0 {
            let ctx = EpochChainContext {
                firm: FirmId([1; 16]),
                file,
                epoch: 1,
            };
            std::hint::black_box(chain_epoch_key(&new, &old, &ctx, &mut rng).unwrap());
        } else {
            let ctx = EpochKeyContext {
                firm: FirmId([1; 16]),
                file,
                epoch: 1,
                holder: Holder::Member(MemberId([2; 16])),
                holder_key_version: 1,
            };
            std::hint::black_box(wrap_epoch_key(&new, &mk, &ctx, &mut rng));
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Raw ceiling: Olm encryptions of a room key (~300 bytes) per second, established
/// sessions.
fn raw_olm_per_s(n: usize) -> f64 {
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    let mut session = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let payload = vec![b'k'; 300];
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(session.encrypt(&payload).unwrap());
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let tmp = tempfile::tempdir().unwrap();
    let (relay, url) = inproc::relay(tmp.path()).await;
    let setup = Instant::now();

    let mut owner = inproc::owner(tmp.path(), &url).await;
    let mut people = Vec::new();
    for i in 0..=args.members {
        let name = format!("m{i}");
        let code = owner.invite(&name, Role::Member).await.unwrap();
        let (mut p, fp) = Profile::join(
            &tmp.path().join(&name),
            inproc::unlock(),
            &url,
            &code,
            &name,
        )
        .await
        .unwrap();
        owner.approve(&name, &fp).await.unwrap();
        p.sync().await.unwrap(); // publishes its prekeys
        people.push(p);
    }
    // m0 leaves; the others stay.
    let leaver = people[0].member();
    let stay: Vec<MemberId> = people[1..].iter().map(Profile::member).collect();
    eprintln!(
        "setup: firm of {} members ({:.1} s)",
        people.len() + 1,
        setup.elapsed().as_secs_f64()
    );
    let mut teams = Vec::new();
    for t in 0..args.teams {
        let team = owner.create_team(&format!("Zespół {t}")).await.unwrap();
        owner.team_add(team, leaver).await.unwrap();
        for k in 0..args.per_file.min(stay.len()) {
            owner
                .team_add(team, stay[(t * args.per_file + k) % stay.len()])
                .await
                .unwrap();
        }
        teams.push(team);
    }
    for i in 0..args.files {
        let file = owner.create_file(&format!("Klient {i}")).await.unwrap();
        if let Some(team) = teams.get(i % teams.len().max(1)) {
            owner.grant_team(file, *team).await.unwrap();
            continue;
        }
        owner.grant(file, leaver).await.unwrap();
        for k in 0..args.per_file.min(stay.len()) {
            owner
                .grant(file, stay[(i * args.per_file + k) % stay.len()])
                .await
                .unwrap();
        }
        if (i + 1) % 100 == 0 {
            eprintln!(
                "setup: {} files ({:.1} s)",
                i + 1,
                setup.elapsed().as_secs_f64()
            );
        }
    }
    let mut everyone = stay.clone();
    everyone.push(leaver);
    for r in 0..args.rooms {
        let room = owner
            .create_room(&format!("Zespół {r}"), &everyone, false)
            .await
            .unwrap();
        owner
            .send(
                Conversation::Room(room),
                RoomEvent::Text {
                    body: "dzień dobry".into(),
                    reply_to: None,
                },
            )
            .await
            .unwrap();
    }
    eprintln!("setup done in {:.1} s", setup.elapsed().as_secs_f64());

    let start = Instant::now();
    let report = owner.revoke_member(leaver, &mut |_| {}).await.unwrap();
    let total = start.elapsed();
    // The relay refuses the leaver's device now.
    let refused = people[0].sync().await.is_err();
    assert!(refused, "the leaver's device must be refused");
    assert_eq!(report.files as usize, args.files, "{report:?}");
    assert_eq!(report.room_sessions as usize, args.rooms, "{report:?}");
    assert_eq!(report.team_keys as usize, args.teams, "{report:?}");

    let symmetric = report.epoch_wraps as usize;
    let olm = report.olm_shares as usize;
    let raw_wraps = (0..3)
        .map(|_| raw_wraps_per_s(symmetric.max(1000)))
        .fold(0f64, f64::max);
    let raw_olm = (0..3)
        .map(|_| raw_olm_per_s(olm.max(1000)))
        .fold(0f64, f64::max);
    let ceiling_ms = 1000.0 * (symmetric as f64 / raw_wraps + olm as f64 / raw_olm);
    let total_ms = total.as_secs_f64() * 1000.0;

    let through = if args.teams > 0 {
        format!(" through {} teams", args.teams)
    } else {
        String::new()
    };
    println!(
        "offboard-bench: a member with {} customer files{through} ({} other holders each, plus the admin) \
         and {} rooms of {} remaining devices; relay on loopback in this process",
        args.files,
        args.per_file,
        args.rooms,
        stay.len()
    );
    println!();
    println!("| step | result |");
    println!("|---|---:|");
    println!(
        "| relay refuses the member (from the call, incl. plan committed) | {} ms |",
        report.refused_after_ms
    );
    println!(
        "| files given a new epoch | {} ({} epoch wraps and links) |",
        report.files, report.epoch_wraps
    );
    println!("| team keys given a new version | {} |", report.team_keys);
    println!(
        "| room sessions replaced | {} ({} Olm shares, {} ms) |",
        report.room_sessions, report.olm_shares, report.room_ms
    );
    println!(
        "| wrapping epoch and member keys (CPU) | {:.1} ms |",
        report.wrap_us as f64 / 1000.0
    );
    println!("| HTTP requests | {} |", report.requests);
    println!("| **all rotation done** | **{total_ms:.0} ms** |");
    println!();
    println!("| raw ceiling (same run) | rate | for this job |");
    println!("|---|---:|---:|");
    println!(
        "| epoch-key wraps and links (XChaCha20-Poly1305) | {raw_wraps:.0}/s | {:.1} ms |",
        1000.0 * symmetric as f64 / raw_wraps
    );
    println!(
        "| Olm encryptions (vodozemac, 300 B) | {raw_olm:.0}/s | {:.1} ms |",
        1000.0 * olm as f64 / raw_olm
    );
    println!(
        "| ratio raw ceiling / total | | {:.3} |",
        ceiling_ms / total_ms
    );
    relay.stop().await.unwrap();
}
