//! Listening, TLS, and graceful shutdown.
//!
//! On SIGTERM/SIGINT the relay stops accepting connections, lets in-flight requests finish
//! (up to a deadline), closes WebSockets, persists the replay window and returns. Every
//! write was committed (SQLite `synchronous = FULL`) before it was acknowledged, so nothing
//! acknowledged is lost.

use crate::api::router;
use crate::config::Config;
use crate::state::AppState;
use crate::store::Store;
use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

fn tls_acceptor(config: &Config) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("open {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("read certificates from {}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("open {}", key.display()))?,
    ))
    .with_context(|| format!("read private key from {}", key.display()))?
    .with_context(|| format!("no private key in {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not fit together")?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))))
}

/// Binds the configured address; returns the listener and the bound address (useful with
/// port 0).
pub async fn bind(config: &Config) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// The store the configuration names, opened (migrations applied).
#[derive(Debug)]
pub enum Opened {
    /// The embedded default: `relay.sqlite3` in the data directory.
    Sqlite(crate::store::sqlite::SqliteStore),
    /// PostgreSQL (`database_url`).
    Postgres(crate::store::postgres::PgStore),
}

/// Opens the configured store: PostgreSQL when `database_url` is set, else the SQLite
/// database in the data directory. Errors never include the connection string.
pub async fn open_store(config: &Config) -> anyhow::Result<Opened> {
    match &config.database_url {
        Some(url) => crate::store::postgres::PgStore::connect_with(
            url.expose(),
            usize::try_from(config.database_pool).unwrap_or(usize::MAX),
            config.database_ca.as_deref(),
        )
        .await
        .map(Opened::Postgres)
        .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL database: {e}")),
        None => crate::store::sqlite::SqliteStore::open(&config.database_path())
            .map(Opened::Sqlite)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", config.database_path().display())),
    }
}

/// A relay serving in this process (on the configured store), for benches, tests and
/// an app that bundles the relay; [`Running::stop`] drains it as SIGTERM would.
#[derive(Debug)]
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Creates the data directory, opens the store, binds and serves on this runtime.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let (listener, addr) = bind(&config).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async {
            let _ = stopped.await;
        };
        let task = match open_store(&config).await? {
            Opened::Sqlite(store) => {
                let state = AppState::load(config, store).await?;
                tokio::spawn(serve(listener, state, stopped))
            }
            Opened::Postgres(store) => {
                let state = AppState::load(config, store).await?;
                tokio::spawn(serve(listener, state, stopped))
            }
        };
        Ok(Self { addr, stop, task })
    }

    /// Stops accepting, drains in-flight requests and waits for the end.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("relay task")?
    }
}

/// Serves until `shutdown` resolves, then drains.
pub async fn serve<S: Store>(
    listener: TcpListener,
    state: AppState<S>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = tls_acceptor(&state.config)?;
    let app = router(state.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(state.config.header_timeout_ms))
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let sweeper = tokio::spawn(crate::retention::sweeper(state.clone()));
    let peers = match &state.config.database_url {
        Some(url) => crate::peers::start(&state, url.expose())
            .map_err(|e| anyhow::anyhow!("cannot reach the other instances: {e}"))?,
        None => Vec::new(),
    };
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = hyper::service::service_fn({
            let app = app.clone();
            move |req: hyper::Request<hyper::body::Incoming>| {
                app.clone().oneshot(req.map(axum::body::Body::new))
            }
        });
        let builder = builder.clone();
        match &tls {
            None => {
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                let header_timeout = Duration::from_millis(state.config.header_timeout_ms);
                tokio::spawn(async move {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    sweeper.abort();
    for task in peers {
        task.abort();
    }
    tracing::info!("shutting down: draining in-flight requests");
    state.hub.close_all("relay shutting down");
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed; closing remaining connections");
    }
    state
        .save_nonces()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
