//! A real S3-compatible server for tests: moto's server mode (the `moto` package from
//! PyPI, installed by `.ci/run` into a virtual environment), on loopback with a fresh
//! bucket. Moto implements S3's semantics closely, rules that bite in production
//! included (multipart parts of at least 5 MiB, ETags, ranged reads, listings), and starts
//! in a second; it keeps objects in memory and is stopped when dropped.
//!
//! Found as `$LEDGERLINE_MOTO_SERVER`, else `moto_server` on the `PATH`, else
//! `~/.cache/ledgerline/moto/bin/moto_server` (where `.ci/run` puts it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket every test server starts with.
pub const BUCKET: &str = "ledgerline-test";
/// Credentials moto accepts (it checks none; the relay signs with them anyway).
pub const ACCESS_KEY_ID: &str = "testing";
/// See [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "testing-secret";

/// A running moto server.
#[derive(Debug)]
pub struct S3 {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("LEDGERLINE_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("moto_server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let cached = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/ledgerline/moto/bin/moto_server");
    assert!(
        cached.is_file(),
        "the S3 tests need moto's server (`.ci/run` installs it into ~/.cache/ledgerline/moto)"
    );
    cached
}

/// One HTTP/1.1 request without a body to the server; returns the status.
fn request(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))
}

impl S3 {
    /// Starts a server and creates [`BUCKET`]; waits until it answers.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut s3 = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(status) = request(port, "PUT", &format!("/{BUCKET}")) {
                assert_eq!(status, 200, "creating the bucket");
                break;
            }
            if let Ok(Some(status)) = s3.child.try_wait() {
                panic!("moto_server exited: {status}");
            }
            assert!(Instant::now() < deadline, "moto_server did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        s3
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_starts_with_its_bucket() {
        let s3 = S3::start();
        assert_eq!(
            request(s3.port, "HEAD", &format!("/{BUCKET}")).unwrap(),
            200
        );
        assert_eq!(request(s3.port, "HEAD", "/no-such-bucket").unwrap(), 404);
    }
}
