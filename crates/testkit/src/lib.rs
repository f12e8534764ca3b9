//! Real services for tests, started on loopback with throwaway configurations: a
//! Dovecot IMAP server over TLS for the mail intake, a KSeF test server (HTTPS) with
//! FA(3) invoices for the KSeF intake, PostgreSQL, an S3 server, and a small tmpfs that
//! really runs out of space. Used by the relay's and the CLI's tests and the desktop app's
//! window tests (dev-dependency only; never shipped).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod disk;
pub mod fa3;
pub mod ksef;
pub mod postgres;
pub mod s3;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A real IMAP server (Debian's `dovecot-imapd`) on loopback with implicit TLS, a
/// throwaway configuration, one user and a Maildir the test writes messages into.
#[derive(Debug)]
pub struct Dovecot {
    child: std::process::Child,
    /// Its IMAPS port on 127.0.0.1.
    pub port: u16,
    /// The PEM of its self-signed certificate (for `localhost`): the office CA to trust.
    pub ca: PathBuf,
    maildir: PathBuf,
    mail_uid: u32,
    next: u32,
}

/// The mailbox's login.
pub const MAIL_USER: &str = "biuro@example.pl";
/// Its password.
pub const MAIL_PASSWORD: &str = "hasło-do-skrzynki 7";

impl Dovecot {
    /// Starts Dovecot with its files under `dir`; waits until it answers.
    pub fn start(dir: &Path) -> Self {
        assert!(
            Path::new("/usr/sbin/dovecot").exists(),
            "the mail tests need Debian's dovecot-imapd (`.ci/run` installs it)"
        );
        std::fs::create_dir_all(dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (ca, key) = (dir.join("imap.pem"), dir.join("imap.key"));
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
        std::fs::write(
            dir.join("users"),
            format!("{MAIL_USER}:{{PLAIN}}{MAIL_PASSWORD}\n"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // As root, Dovecot runs its own services as its own users and the mail as nobody;
        // as anyone else, all of it as that user.
        let me = |flag: &str| {
            String::from_utf8(
                std::process::Command::new("id")
                    .arg(flag)
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim()
            .to_owned()
        };
        let (uid, name) = (me("-u").parse::<u32>().unwrap(), me("-un"));
        let (internal, login, mail_uid) = if uid == 0 {
            ("dovecot".to_owned(), "dovenull".to_owned(), 65534)
        } else {
            (name.clone(), name, uid)
        };
        let home = dir.join("home");
        let maildir = home.join("biuro").join("Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        for d in ["run", "state"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let d = dir.display();
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
protocols = imap\nlisten = 127.0.0.1\nssl = required\nssl_cert = <{d}/imap.pem\nssl_key = <{d}/imap.key\n\
auth_mechanisms = plain\ndisable_plaintext_auth = no\ndefault_internal_user = {internal}\n\
default_login_user = {login}\nfirst_valid_uid = 1\n\
service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n  chroot =\n}}\n\
service anvil {{\n  chroot =\n}}\n\
passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_uid} home={d}/home/%n\n}}\n\
mail_location = maildir:~/Maildir\n"
        );
        std::fs::write(dir.join("dovecot.conf"), conf).unwrap();
        let me = Self {
            child: std::process::Command::new("/usr/sbin/dovecot")
                .args(["-F", "-c"])
                .arg(dir.join("dovecot.conf"))
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap(),
            port,
            ca,
            maildir,
            mail_uid,
            next: 0,
        };
        me.own(&home);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "dovecot did not start: {}",
                std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        me
    }

    /// Hands a path (recursively) to the mail user.
    fn own(&self, p: &Path) {
        std::os::unix::fs::chown(p, Some(self.mail_uid), Some(self.mail_uid)).unwrap();
        if p.is_dir() {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                self.own(&e.path());
            }
        }
    }

    /// Delivers a message (as a local delivery agent does: into `new/`).
    pub fn deliver(&mut self, raw: &[u8]) {
        self.next += 1;
        let name = format!("17000000{:02}.M{}P1.ledgerline-test", self.next, self.next);
        let tmp = self.maildir.join("tmp").join(&name);
        std::fs::write(&tmp, raw).unwrap();
        self.own(&tmp);
        std::fs::rename(&tmp, self.maildir.join("new").join(&name)).unwrap();
    }

    /// Makes the server renumber the folder (a new UIDVALIDITY), as after a server move.
    pub fn renumber(&self) {
        for e in std::fs::read_dir(&self.maildir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("dovecot") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        // UIDVALIDITY is the time in seconds: make sure a new second has begun.
        std::thread::sleep(Duration::from_millis(1100));
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM: the master stops its services before it exits.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// An RFC 2047 encoded word (base64, UTF-8).
pub fn word(s: &str) -> String {
    use base64::Engine;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

/// A base64 attachment part of a `multipart/mixed` message with the boundary `GRANICA`.
pub fn attachment_part(name: &str, mime: &str, bytes: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "--GRANICA\r\nContent-Type: {mime}; name=\"{n}\"\r\nContent-Disposition: attachment; filename=\"{n}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        lines.join("\r\n"),
        n = word(name)
    )
}
