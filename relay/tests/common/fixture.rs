//! Signing devices and firms that talk to a relay over real HTTP and WebSocket. Shared by
//! the relay integration tests and the relay benchmark (bench/).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, MemberId};
use ledgerline_protocol::keys::{DeviceSigningKey, DeviceWrapSecret, MasterSigningKey};
use ledgerline_protocol::request::RequestHead;
use ledgerline_protocol::roster::{
    DeviceCertificate, DeviceKeys, EventBody, EventKind, Role, RosterEvent,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A person with a master key.
pub struct Person {
    pub id: MemberId,
    pub master: MasterSigningKey,
}

/// A device that signs requests.
#[derive(Clone)]
pub struct Device {
    pub firm: FirmId,
    pub id: DeviceId,
    pub member: MemberId,
    pub key: DeviceSigningKey,
    pub wrap: DeviceWrapSecret,
    pub base: String,
}

pub struct Signed {
    pub method: String,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Signed {
    /// The request's signature (hex), as the audit log records it.
    pub fn signature(&self) -> String {
        self.headers
            .iter()
            .find(|(k, _)| *k == "ledgerline-signature")
            .map(|(_, v)| v.clone())
            .unwrap()
    }
}

/// The hashes of a proof as the relay answers them (a JSON array of hex).
pub fn proof_hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect()
}

impl Device {
    pub fn sign_at(&self, method: &str, path: &str, body: &[u8], ts: u64) -> Signed {
        let mut rng = ChaCha20Rng::from_entropy();
        let req = RequestHead::new(self.firm, self.id, method, path, ts, body, &mut rng)
            .unwrap()
            .sign(&self.key);
        Signed {
            method: method.into(),
            path: path.into(),
            headers: req.http_headers().to_vec(),
            body: body.to_vec(),
        }
    }

    pub fn sign(&self, method: &str, path: &str, body: &[u8]) -> Signed {
        self.sign_at(method, path, body, now_ms())
    }

    pub async fn send(&self, client: &reqwest::Client, s: &Signed) -> (u16, Value) {
        send(client, &self.base, s).await
    }

    pub async fn call(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let s = self.sign(method, path, &bytes);
        send(client, &self.base, &s).await
    }

    /// Every message of a room, paging through it: seq → ciphertext hex.
    pub async fn all_messages(
        &self,
        client: &reqwest::Client,
        room: &str,
    ) -> std::collections::HashMap<u64, String> {
        let mut stored = std::collections::HashMap::new();
        let mut from = 1;
        loop {
            let v = self
                .ok(
                    client,
                    "GET",
                    &format!("/v1/rooms/{room}/messages?from={from}&limit=500"),
                    None,
                )
                .await;
            let msgs = v["messages"].as_array().unwrap().clone();
            let Some(last) = msgs.last() else { break };
            from = last["seq"].as_u64().unwrap() + 1;
            for m in &msgs {
                stored.insert(
                    m["seq"].as_u64().unwrap(),
                    m["ciphertext"].as_str().unwrap().to_owned(),
                );
            }
        }
        stored
    }

    /// The first `size` entries of the firm's audit log (bytes), paging through them.
    pub async fn audit_entries(&self, client: &reqwest::Client, size: u64) -> Vec<Vec<u8>> {
        let mut entries: Vec<Vec<u8>> = Vec::new();
        while (entries.len() as u64) < size {
            let v = self
                .ok(
                    client,
                    "GET",
                    &format!("/v1/audit/entries?from={}&limit=500", entries.len()),
                    None,
                )
                .await;
            let page = v["entries"].as_array().unwrap();
            assert!(!page.is_empty(), "entries end before the checkpoint's size");
            entries.extend(
                page.iter()
                    .map(|e| hex::decode(e.as_str().unwrap()).unwrap()),
            );
        }
        entries.truncate(usize::try_from(size).unwrap());
        entries
    }

    /// Asserts a 2xx and returns the JSON.
    pub async fn ok(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, v) = self.call(client, method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }
}

pub async fn send(client: &reqwest::Client, base: &str, s: &Signed) -> (u16, Value) {
    try_send(client, base, s).await.expect("request")
}

/// Like [`send`], but `None` when the connection fails (relay killed, refused).
pub async fn try_send(client: &reqwest::Client, base: &str, s: &Signed) -> Option<(u16, Value)> {
    let mut rb = client.request(s.method.parse().unwrap(), format!("{base}{}", s.path));
    for (k, v) in &s.headers {
        rb = rb.header(*k, v);
    }
    let res = rb.body(s.body.clone()).send().await.ok()?;
    let status = res.status().as_u16();
    let text = res.text().await.ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// A firm on the relay: owner with one device, plus helpers to grow it.
pub struct Firm {
    pub id: FirmId,
    pub owner: Person,
    pub owner_device: Device,
    pub rng: ChaCha20Rng,
    pub next_seq: u64,
    pub head: [u8; 32],
    pub base: String,
    pub clock: u64,
}

impl Firm {
    pub async fn create(client: &reqwest::Client, base: &str, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let id = FirmId::random(&mut rng);
        let owner = Person {
            id: MemberId::random(&mut rng),
            master: MasterSigningKey::generate(&mut rng),
        };
        let clock = now_ms() - 60_000;
        let genesis = EventBody {
            firm: id,
            seq: 0,
            prev: [0; 32],
            timestamp_ms: clock,
            signer: owner.id,
            kind: EventKind::Genesis {
                owner_key: owner.master.verifying_key(),
            },
        }
        .sign(&owner.master);
        let dev = new_device(&mut rng, id, owner.id, base);
        let cert = certify(id, &owner, &dev);
        let added = EventBody {
            firm: id,
            seq: 1,
            prev: genesis.hash(),
            timestamp_ms: clock,
            signer: owner.id,
            kind: EventKind::DeviceAdded(cert),
        }
        .sign(&owner.master);
        let res = client
            .post(format!("{base}/v1/firms"))
            .json(&json!({ "events": [hex::encode(genesis.to_bytes()), hex::encode(added.to_bytes())] }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
        Self {
            id,
            owner,
            owner_device: dev,
            rng,
            next_seq: 2,
            head: added.hash(),
            base: base.into(),
            clock,
        }
    }

    /// Builds the next roster event signed by `signer`.
    pub fn event(&mut self, signer: &Person, kind: EventKind) -> RosterEvent {
        self.clock += 1;
        EventBody {
            firm: self.id,
            seq: self.next_seq,
            prev: self.head,
            timestamp_ms: self.clock.min(now_ms()),
            signer: signer.id,
            kind,
        }
        .sign(&signer.master)
    }

    /// Appends through `device`; panics unless accepted.
    pub async fn append(&mut self, client: &reqwest::Client, device: &Device, event: RosterEvent) {
        let (status, v) = device
            .call(
                client,
                "POST",
                "/v1/roster",
                Some(json!({ "event": hex::encode(event.to_bytes()) })),
            )
            .await;
        assert_eq!(status, 200, "roster append: {v}");
        self.next_seq += 1;
        self.head = event.hash();
    }

    /// Adds a member with one device (event by the owner, via the owner's device).
    pub async fn add_member(&mut self, client: &reqwest::Client, role: Role) -> (Person, Device) {
        let p = Person {
            id: MemberId::random(&mut self.rng),
            master: MasterSigningKey::generate(&mut self.rng),
        };
        let e = self.event(
            &self.owner_clone(),
            EventKind::MemberAdded {
                member: p.id,
                master_key: p.master.verifying_key(),
                role,
            },
        );
        let owner_dev = self.owner_device.clone();
        self.append(client, &owner_dev, e).await;
        let d = self.add_device(client, &p).await;
        (p, d)
    }

    /// Adds a guest of `file`'s conversation with one device of their own (the device
    /// event signed by the guest, as a guest's client does).
    pub async fn add_guest(&mut self, client: &reqwest::Client, file: FileId) -> (Person, Device) {
        let p = Person {
            id: MemberId::random(&mut self.rng),
            master: MasterSigningKey::generate(&mut self.rng),
        };
        let e = self.event(
            &self.owner_clone(),
            EventKind::GuestAdded {
                member: p.id,
                master_key: p.master.verifying_key(),
                file,
            },
        );
        let owner_dev = self.owner_device.clone();
        self.append(client, &owner_dev, e).await;
        let d = new_device(&mut self.rng, self.id, p.id, &self.base);
        let cert = certify(self.id, &p, &d);
        let e = self.event(&p, EventKind::DeviceAdded(cert));
        self.append(client, &owner_dev, e).await;
        (p, d)
    }

    pub async fn add_device(&mut self, client: &reqwest::Client, p: &Person) -> Device {
        let d = new_device(&mut self.rng, self.id, p.id, &self.base);
        let cert = certify(self.id, p, &d);
        let e = self.event(&self.owner_clone(), EventKind::DeviceAdded(cert));
        let owner_dev = self.owner_device.clone();
        self.append(client, &owner_dev, e).await;
        d
    }

    pub async fn grant(&mut self, client: &reqwest::Client, file: FileId, member: MemberId) {
        let e = self.event(
            &self.owner_clone(),
            EventKind::FileAccessGranted { file, member },
        );
        let owner_dev = self.owner_device.clone();
        self.append(client, &owner_dev, e).await;
    }

    pub fn owner_clone(&self) -> Person {
        Person {
            id: self.owner.id,
            master: self.owner.master.clone(),
        }
    }

    /// Creates a customer file's room from the owner's device; its id in hex.
    pub async fn file_room(&mut self, client: &reqwest::Client, file: FileId) -> String {
        let room = hex::encode(self.random16());
        self.owner_device
            .ok(
                client,
                "POST",
                "/v1/rooms",
                Some(json!({ "room": room, "file": file })),
            )
            .await;
        room
    }

    pub fn random16(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        b
    }
}

pub fn new_device(rng: &mut ChaCha20Rng, firm: FirmId, member: MemberId, base: &str) -> Device {
    Device {
        firm,
        id: DeviceId::random(rng),
        member,
        key: DeviceSigningKey::generate(rng),
        wrap: DeviceWrapSecret::generate(rng),
        base: base.into(),
    }
}

pub fn certify(firm: FirmId, p: &Person, d: &Device) -> DeviceCertificate {
    let mut identity = [0u8; 32];
    identity.copy_from_slice(&d.id.0.repeat(2));
    let keys = DeviceKeys {
        signing: d.key.verifying_key(),
        identity,
        wrap: d.wrap.public_key(),
    };
    DeviceCertificate::issue(firm, p.id, d.id, keys, &p.master)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Opens a signed WebSocket for `device`.
pub async fn websocket(
    device: &Device,
    addr: std::net::SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let s = device.sign("GET", "/v1/ws", b"");
    let mut req = format!("ws://{addr}/v1/ws").into_client_request().unwrap();
    for (k, v) in s.headers {
        req.headers_mut().insert(k, v.parse().unwrap());
    }
    // A small read buffer (pushes are small): the benches' thousand connections then
    // weigh little beside the relay's own.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false)
        .await
        .expect("websocket");
    ws
}

/// Next text frame as JSON (skipping pings), with a timeout.
pub async fn next_event<S>(ws: &mut S) -> Option<Value>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
            .ok()?;
        match msg {
            tokio_tungstenite::tungstenite::Message::Text(t) => {
                return serde_json::from_str(&t).ok()
            }
            tokio_tungstenite::tungstenite::Message::Close(_) => return None,
            _ => continue,
        }
    }
}
