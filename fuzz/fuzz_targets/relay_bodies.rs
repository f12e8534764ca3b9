#![no_main]

use libfuzzer_sys::fuzz_target;

// Every JSON request body the relay accepts, decoded as its handlers do. CI replays the
// routes' bodies and their mutations through it (relay/tests/rejections.rs).
fuzz_target!(|data: &[u8]| ledgerline_relay::api::decode_request_bodies(data));
