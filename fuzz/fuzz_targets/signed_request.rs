#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ledgerline_protocol::request::SignedRequest::from_bytes(data) {
        assert_eq!(r.to_bytes(), data, "decoding must be canonical");
    }
});
