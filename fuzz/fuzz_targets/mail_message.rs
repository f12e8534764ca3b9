#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in the client core (`mail::fuzz_message`), whose tests replay seeds,
// their mutations and `fuzz/regressions/mail_message/` through it in every CI run.
fuzz_target!(|data: &[u8]| ledgerline_client_core::mail::fuzz_message(data));
