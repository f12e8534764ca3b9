//! A real PostgreSQL server for tests (Debian's `postgresql` package), started on loopback
//! with a throwaway cluster: `initdb` into the test's directory, `postgres` listening on
//! 127.0.0.1 only, trust authentication for the one user `ledgerline` (nothing but the
//! test can reach it), a database `ledgerline`. As root the server runs as the `postgres`
//! user (PostgreSQL refuses root); otherwise as the current user. Stopped (fast shutdown)
//! when dropped. The packaged service is not used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running PostgreSQL cluster.
#[derive(Debug)]
pub struct Postgres {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The cluster's directory.
    pub data: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    /// The CA (PEM file) that signed the server's certificate, when it speaks TLS.
    pub ca: Option<PathBuf>,
}

/// The user the tests connect as.
pub const PG_USER: &str = "ledgerline";
/// The database they use.
pub const PG_DATABASE: &str = "ledgerline";

/// The newest installed server's `bin` directory.
fn server_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|_| {
            panic!("the PostgreSQL tests need Debian's postgresql (`.ci/run` installs it)")
        })
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .expect("no PostgreSQL server under /usr/lib/postgresql")
}

impl Postgres {
    /// Starts a cluster with its files under `dir`; waits until it answers.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, false)
    }

    /// [`Postgres::start`] with TLS on: a throwaway CA signs a certificate for 127.0.0.1
    /// and `localhost`; [`Postgres::ca`] names the CA's PEM file.
    pub fn start_tls(dir: &Path) -> Self {
        Self::start_with(dir, true)
    }

    fn start_with(dir: &Path, tls: bool) -> Self {
        let bin = server_bin();
        std::fs::create_dir_all(dir).unwrap();
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let run_as = root.then(|| "postgres".to_owned());
        let data = dir.join("pgdata");
        let socket = dir.join("pgrun");
        for d in [&data, &socket] {
            std::fs::create_dir_all(d).unwrap();
        }
        if root {
            // The server's user must reach its directories: the test's own temporary
            // directories become traversable (not readable) and these two its own.
            let temp = std::env::temp_dir();
            for a in dir.ancestors() {
                if a == temp || a == Path::new("/") {
                    break;
                }
                let mut p = std::fs::metadata(a).unwrap().permissions();
                p.set_mode(p.mode() | 0o711);
                std::fs::set_permissions(a, p).unwrap();
            }
            let uid = |flag: &str| -> u32 {
                String::from_utf8(
                    Command::new("id")
                        .args([flag, "postgres"])
                        .output()
                        .unwrap()
                        .stdout,
                )
                .unwrap()
                .trim()
                .parse()
                .unwrap()
            };
            let (u, g) = (uid("-u"), uid("-g"));
            for d in [&data, &socket] {
                std::os::unix::fs::chown(d, Some(u), Some(g)).unwrap();
            }
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let command = |program: &str| as_server(&bin, run_as.as_deref(), program);
        let out = command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = dir.join("postgres.log");
        let mut ssl = Vec::new();
        let ca = tls.then(|| {
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            ca_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "Ledgerline test database CA");
            let ca_cert = ca_params.self_signed(&ca_key).unwrap();
            let issuer = rcgen::Issuer::new(ca_params, &ca_key);
            let key = rcgen::KeyPair::generate().unwrap();
            let params =
                rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
                    .unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            // In the cluster's own directory, which the server's user owns.
            let (cert_file, key_file) = (data.join("server.crt"), data.join("server.key"));
            std::fs::write(&cert_file, cert.pem()).unwrap();
            std::fs::write(&key_file, key.serialize_pem()).unwrap();
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
            if let Some(owner) = std::fs::metadata(&data)
                .ok()
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            {
                let group = std::fs::metadata(&data)
                    .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
                    .unwrap();
                for f in [&cert_file, &key_file] {
                    std::os::unix::fs::chown(f, Some(owner), Some(group)).unwrap();
                }
            }
            ssl = vec![
                "-c".to_owned(),
                "ssl=on".to_owned(),
                "-c".to_owned(),
                format!("ssl_cert_file={}", cert_file.display()),
                "-c".to_owned(),
                format!("ssl_key_file={}", key_file.display()),
            ];
            let ca_file = dir.join("database-ca.pem");
            std::fs::write(&ca_file, ca_cert.pem()).unwrap();
            ca_file
        });
        let child = command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(&ssl)
            .arg("-c")
            .arg(format!("unix_socket_directories={}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let me = Self {
            child,
            port,
            data,
            bin,
            run_as,
            ca,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(me.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", PG_USER])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            if ready.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let created = Command::new(me.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                PG_USER,
                PG_DATABASE,
            ])
            .output()
            .unwrap();
        assert!(
            created.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        me
    }

    /// A connection string for the test database (`tokio-postgres` and libpq syntax).
    pub fn url(&self) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{PG_DATABASE}", self.port)
    }

    /// Who the server runs as (`postgres` when the tests run as root).
    pub fn runs_as(&self) -> Option<&str> {
        self.run_as.as_deref()
    }
}

/// A server program, run as the server's user.
fn as_server(bin: &Path, run_as: Option<&str>, program: &str) -> Command {
    match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(bin.join(program));
            c
        }
        None => Command::new(bin.join(program)),
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown: the server ends its backends and stops cleanly (`pg_ctl` finds the
        // postmaster itself; as root the child here is `runuser`).
        let _ = as_server(&self.bin, self.run_as.as_deref(), "pg_ctl")
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
