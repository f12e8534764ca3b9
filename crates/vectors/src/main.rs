//! `gen-vectors`: regenerates `test-vectors/` deterministically.
//!
//! `cargo run --bin gen-vectors` writes every file; `--check` only compares and exits 1 on
//! any difference. The output is byte-for-byte stable: CI regenerates and fails on a diff.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check_only = false;
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check_only = true,
            "--out" => match args.next() {
                Some(d) => dir = PathBuf::from(d),
                None => return usage("--out needs a directory"),
            },
            "-h" | "--help" => {
                println!("Usage: gen-vectors [--check] [--out DIR]\n\nRegenerates Ledgerline's test vectors (default DIR: test-vectors/ of the repository).\n  --check    compare with the files on disk instead of writing; exit 1 on any difference\n  --out DIR  write to DIR");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let mut failed = false;
    for c in ledgerline_vectors::CONSTRUCTIONS {
        let text = match ledgerline_vectors::render(c) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let path = dir.join(c.file);
        if check_only {
            let same = std::fs::read_to_string(&path)
                .map(|old| old == text)
                .unwrap_or(false);
            if !same {
                eprintln!("differs: {}", path.display());
                failed = true;
            }
        } else if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, text))
        {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}\nUsage: gen-vectors [--check] [--out DIR]");
    ExitCode::from(2)
}
