#![no_main]

use libfuzzer_sys::fuzz_target;

use ledgerline_protocol::checkpoint::{open_checkpoint, Checkpoint};
use ledgerline_protocol::keys::LogSigningKey;

fuzz_target!(|data: &[u8]| {
    let _ = Checkpoint::parse_body(data);
    let key = LogSigningKey::from_bytes(&[7; 32]).verifying_key();
    let _ = open_checkpoint(data, "relay.example/log", &key);
});
