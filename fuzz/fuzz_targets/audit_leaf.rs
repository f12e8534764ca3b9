#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = ledgerline_protocol::audit::AuditLeaf::from_bytes(data) {
        assert_eq!(l.to_bytes(), data, "decoding must be canonical");
    }
});
