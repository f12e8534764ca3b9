//! KSeF intake (`protocol-spec/ksef.md`): invoices from Poland's national e-invoice
//! system, fetched with each customer's token and read on the client. Pure parts here (the
//! API client, the FA(3) reader, the KSeF number); storage and sync live in
//! `profile::ksef`.

pub mod api;
pub mod invoice;
pub mod number;

/// The body of the `ksef_invoice` fuzz target (`fuzz/fuzz_targets/ksef_invoice.rs`),
/// replayed over a corpus by this crate's tests: any bytes an invoice issuer (or whoever
/// stands between KSeF and us) can send are read without a panic, and what comes out
/// keeps the reader's promises (no control characters, amounts with at most two decimals,
/// bounded text).
pub fn fuzz_invoice(data: &[u8]) {
    let Ok(inv) = invoice::parse(data) else {
        return;
    };
    let clean = |s: &str| !s.chars().any(char::is_control) && s.chars().count() <= 2048;
    assert!(clean(&inv.number) && clean(&inv.seller.name) && clean(&inv.buyer.name));
    for w in &inv.warnings {
        assert!(clean(w), "a warning carries control characters");
    }
    for r in &inv.rates {
        assert!(r.net.scale() <= 2 && r.vat.scale() <= 2);
    }
    assert!(inv.gross.scale() <= 2 && inv.net.scale() <= 2);
    assert_eq!(inv.currency.len(), 3);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn the_fuzz_body_survives_its_seeds_their_mutations_and_the_regressions() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x6b736566);
        let mut seeds = Vec::new();
        for _ in 0..4 {
            let (s, b) = (
                ledgerline_testkit::fa3::random_party(&mut rng),
                ledgerline_testkit::fa3::random_party(&mut rng),
            );
            let day = chrono::NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
            seeds.push(
                ledgerline_testkit::fa3::Fa3::random(&mut rng, s, b, day)
                    .xml()
                    .into_bytes(),
            );
        }
        seeds.push(b"<Faktura xmlns=\"http://crd.gov.pl/wzor/2025/06/25/13775/\"><Fa>&#27;&amp;</Fa></Faktura>".to_vec());
        seeds.push(Vec::new());
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/ksef_invoice");
        let n = ledgerline_vectors::fuzzing::replay(seeds, &mut rng, &dir, super::fuzz_invoice);
        assert!(n > 300, "{n}");
    }
}
