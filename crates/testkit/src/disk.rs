//! A small filesystem of its own for a test: a tmpfs that really runs out of space
//! (`ENOSPC` for every file on it at once), grows when the "operator" makes room, and can be
//! filled by "another program".
//!
//! Mounting needs root. CI runs as root and must run such a test: [`Tmpfs::mount`] fails
//! the test there if it cannot mount; elsewhere without root it says the test did not run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test, unmounted when dropped (also when the test fails).
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts `bytes` of tmpfs at `at` (created). `None`, the test not run, only without
    /// root outside CI.
    pub fn mount(at: &Path, bytes: u64) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Self(at.to_owned()));
        }
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must run this test: mounting a tmpfs at {} failed",
            at.display()
        );
        eprintln!("NOT RUN: mounting a tmpfs needs root (CI runs this test as root)");
        None
    }

    /// The operator makes room: the filesystem grows to `bytes`.
    pub fn grow(&self, bytes: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {}", self.0.display());
    }

    /// Another program fills what is left: a file of zeros written until the filesystem
    /// refuses with `ENOSPC`. Deleting the returned file makes the room again.
    pub fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 << 10];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        // The last partial block too.
        while f.write(&[0u8]).is_ok_and(|n| n == 1) {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
