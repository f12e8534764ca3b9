#![no_main]

use libfuzzer_sys::fuzz_target;

// An audit bundle is whatever the auditor was handed: the verifier must answer every input
// with a verdict, never a panic.
fuzz_target!(|data: &[u8]| {
    let mut v = ledgerline_audit::Verifier::new(ledgerline_audit::Options::default());
    for line in data.split(|b| *b == b'\n') {
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        if v.line(text).is_err() {
            return;
        }
    }
    let _ = v.finish();
});
