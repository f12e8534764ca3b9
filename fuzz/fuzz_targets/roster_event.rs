#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = ledgerline_protocol::roster::RosterEvent::from_bytes(data) {
        assert_eq!(e.to_bytes(), data, "decoding must be canonical");
        let _ = ledgerline_protocol::roster::Roster::from_genesis(&e);
    }
});
