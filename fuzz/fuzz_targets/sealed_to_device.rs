#![no_main]

use libfuzzer_sys::fuzz_target;
use ledgerline_protocol::keys::DeviceWrapSecret;

fuzz_target!(|data: &[u8]| {
    let secret = DeviceWrapSecret::from_bytes([7; 32]);
    let _ = ledgerline_protocol::wrap::open_sealed(data, &secret, b"fuzz");
});
