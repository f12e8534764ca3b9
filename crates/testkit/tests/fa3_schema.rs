//! The generated FA(3) invoices are valid against the official schema
//! (`test-vectors/ksef/FA3/`), checked by libxml2's `xmllint --schema` (`.ci/run` installs
//! `libxml2-utils`). The schema's one remote import is mapped to the local copy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ledgerline_testkit::fa3::{random_party, Fa3, Party};
use rand::SeedableRng;
use std::path::Path;

#[test]
fn generated_invoices_are_valid_fa3() {
    assert!(
        Path::new("/usr/bin/xmllint").exists(),
        "this test needs xmllint (Debian's libxml2-utils; `.ci/run` installs it)"
    );
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/ksef/FA3");
    let dir = tempfile_dir();
    for f in std::fs::read_dir(&vectors).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap().replace(
            "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/StrukturyDanych_v10-0E.xsd",
            "StrukturyDanych_v10-0E.xsd",
        );
        std::fs::write(dir.join(f.file_name().unwrap()), text).unwrap();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut files = Vec::new();
    for n in 0..40 {
        let seller = random_party(&mut rng);
        let mut buyer = random_party(&mut rng);
        if n % 7 == 3 {
            buyer = Party {
                nip: None,
                eu: Some(("DE".into(), "123456789".into())),
                name: "Müller & Söhne GmbH".into(),
            };
        }
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1 + (n % 12), 1 + n % 28).unwrap();
        let fa = Fa3::random(&mut rng, seller, buyer, day);
        let fa = if n % 5 == 4 {
            let ksef = ledgerline_testkit::fa3::ksef_number(
                fa.seller.nip.as_deref().unwrap(),
                day,
                &mut rng,
            );
            Fa3::correction(&fa, &ksef, day + chrono::Duration::days(3))
        } else {
            fa
        };
        let path = dir.join(format!("invoice-{n}.xml"));
        std::fs::write(&path, fa.xml()).unwrap();
        files.push(path);
    }
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(dir.join("schemat_FA(3)_v1-0E.xsd"))
        .args(&files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches(" validates").count(),
        files.len(),
        "{stderr}"
    );
    // And the check can fail: an invoice without its amount due is refused.
    let broken = dir.join("broken.xml");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(
        &broken,
        text.replace("<P_15>", "<P_99>")
            .replace("</P_15>", "</P_99>"),
    )
    .unwrap();
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(dir.join("schemat_FA(3)_v1-0E.xsd"))
        .arg(&broken)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fa3-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
