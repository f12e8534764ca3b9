//! Test harness: the real relay binary on an ephemeral loopback port, and signing devices.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fixture;
pub mod streaming;

pub use fixture::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The relay as a child process.
pub struct Relay {
    pub child: Child,
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub data: PathBuf,
    pub stderr_log: PathBuf,
}

impl Relay {
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        Self::start_command(
            data,
            extra,
            Command::new(env!("CARGO_BIN_EXE_ledgerline-relay")),
        )
    }

    /// The relay with every file it writes limited to `bytes` (`RLIMIT_FSIZE`, through
    /// util-linux's `prlimit`; `SIGXFSZ` ignored, so a write past it fails with `EFBIG`
    /// like one on a full disk): the disk-full fault.
    pub fn start_with_file_limit(data: &Path, extra: &[&str], bytes: u64) -> Self {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "trap '' XFSZ; exec prlimit --fsize={bytes} -- \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_ledgerline-relay"));
        Self::start_command(data, extra, c)
    }

    fn start_command(data: &Path, extra: &[&str], mut command: Command) -> Self {
        let log = data.with_extension("log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data)
            .args(extra)
            .env("LEDGERLINE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read address");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(
            url.starts_with("http"),
            "relay did not start: {line:?}; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let addr = url.rsplit("//").next().unwrap().parse().unwrap();
        Self {
            child,
            base: url,
            addr,
            data: data.to_owned(),
            stderr_log: log,
        }
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(std::time::Instant::now() < deadline, "relay did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
