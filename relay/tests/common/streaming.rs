//! A one-request document upload whose body a test hands over in pieces (two uploads of
//! one id at once: `races.rs`, `instances.rs`).

use super::Device;
use ledgerline_protocol::ids::FileId;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The release share [`Streaming`] uploads declare.
pub const STREAMING_SHARE: [u8; 32] = [5; 32];

/// A one-request upload whose body the test hands over in pieces.
pub struct Streaming {
    body: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    answer: tokio::task::JoinHandle<(u16, Value)>,
}

impl Streaming {
    /// Sends the headers and the first `head` bytes of `bytes`; the rest waits for
    /// [`Streaming::finish`].
    pub async fn start(
        http: &reqwest::Client,
        dev: &Device,
        file: FileId,
        doc: &str,
        bytes: &[u8],
        head: usize,
    ) -> (Self, Vec<u8>) {
        let share_hash = hex::encode(Sha256::digest(STREAMING_SHARE));
        let path = format!("/v1/files/{file}/documents/{doc}?epoch=0&share_sha256={share_hash}");
        let s = dev.sign("PUT", &path, bytes);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let mut rb = http
            .put(format!("{}{}", dev.base, s.path))
            .header("ledgerline-release-share", hex::encode(STREAMING_SHARE));
        for (k, v) in &s.headers {
            rb = rb.header(*k, v);
        }
        let rb = rb.body(reqwest::Body::wrap_stream(stream));
        let answer = tokio::spawn(async move {
            let res = rb.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        });
        tx.send(Ok(bytes[..head].to_vec())).await.unwrap();
        (Self { body: tx, answer }, bytes[head..].to_vec())
    }

    pub async fn finish(self, rest: Vec<u8>) -> (u16, Value) {
        self.body.send(Ok(rest)).await.unwrap();
        drop(self.body);
        tokio::time::timeout(Duration::from_secs(30), self.answer)
            .await
            .expect("the upload answers")
            .unwrap()
    }
}
