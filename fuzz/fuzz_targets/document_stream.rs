#![no_main]

use libfuzzer_sys::fuzz_target;

use ledgerline_protocol::document::decrypt_document;
use ledgerline_protocol::keys::DocumentKey;

fuzz_target!(|data: &[u8]| {
    let _ = decrypt_document(&DocumentKey::from_bytes([7; 32]), data);
});
