//! The PostgreSQL harness starts a real server on loopback that a client reaches over TCP,
//! keeps what is written, and delivers LISTEN/NOTIFY between connections (what several
//! relay instances will use to push to each other's sockets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use ledgerline_testkit::postgres::Postgres;
use std::time::Duration;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn a_loopback_cluster_stores_rows_and_delivers_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(&dir.path().join("pg"));
    let url = pg.url();
    assert!(url.starts_with("postgres://ledgerline@127.0.0.1:"));

    let a = connect(&url).await;
    a.batch_execute("CREATE TABLE t (k BIGINT PRIMARY KEY, v BYTEA NOT NULL)")
        .await
        .unwrap();
    a.execute(
        "INSERT INTO t (k, v) VALUES ($1, $2)",
        &[&7i64, &vec![0u8, 1, 2]],
    )
    .await
    .unwrap();
    let row = a
        .query_one("SELECT v FROM t WHERE k = $1", &[&7i64])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), vec![0u8, 1, 2]);
    // A second key of the same value is refused (the primary key holds).
    assert!(a
        .execute("INSERT INTO t (k, v) VALUES ($1, $2)", &[&7i64, &vec![9u8]])
        .await
        .is_err());

    // LISTEN on one connection, NOTIFY from another.
    let (listener, mut connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    listener.batch_execute("LISTEN relay").await.unwrap();
    a.batch_execute("NOTIFY relay, 'device 42'").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some("device 42"));
    drop((a, listener));
}
