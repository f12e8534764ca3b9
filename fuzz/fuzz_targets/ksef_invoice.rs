#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in the client core (`ksef::fuzz_invoice`), whose tests replay seeds,
// their mutations and `fuzz/regressions/ksef_invoice/` through it in every CI run.
fuzz_target!(|data: &[u8]| ledgerline_client_core::ksef::fuzz_invoice(data));
