//! Ledgerline's blind relay.
//!
//! The relay stores only ciphertext, wrapped keys, signed roster events and audit leaves;
//! it authenticates every request with the device's signature
//! (`protocol-spec/signed-request.md`), enforces the roster and customer-file access, and
//! routes. It never holds a key that decrypts anything. The API is specified in
//! `protocol-spec/relay-api.md`.
//!
//! | module | role |
//! |---|---|
//! | [`config`] | defaults, TOML file, `LEDGERLINE_*` variables and flags |
//! | [`server`] | listening, TLS, graceful shutdown |
//! | [`api`] | routes and handlers |
//! | [`auth`] | signed-request verification and extractors |
//! | [`store`] | the storage trait, its rules over SQLite and PostgreSQL, the conformance suite |
//! | [`migrate`] | moving a relay's database from SQLite to PostgreSQL |
//! | [`blobs`] | document blobs on disk or in an S3-compatible bucket |
//! | [`backup`] | backup and restore of the data directory, consistent while serving |
//! | [`hub`] | WebSocket connections and pushes |
//! | [`peers`] | the other instances on a shared PostgreSQL store (`LISTEN`/`NOTIFY`) |
//! | [`metrics`] | Prometheus metrics |
//! | [`retention`] | the retention sweeper |
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod backup;
pub mod blobs;
pub mod config;
pub mod error;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod peers;
pub mod retention;
pub mod server;
pub mod state;
pub mod store;
