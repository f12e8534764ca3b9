#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in ledgerline-vectors (crates/vectors/src/fuzzing.rs), where CI replays
// regression inputs and the test vectors through it.
fuzz_target!(|data: &[u8]| ledgerline_vectors::fuzzing::history_page(data));
