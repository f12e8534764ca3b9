//! Builds the window (client/desktop/ui; `npm ci` from the lockfile only when
//! node_modules is missing) before Tauri embeds it, then runs Tauri's own build step.
use std::path::Path;
use std::process::{exit, Command};

fn run(ui: &Path, args: &[&str]) {
    let Some((program, rest)) = args.split_first() else {
        return;
    };
    match Command::new(program).args(rest).current_dir(ui).status() {
        Ok(s) if s.success() => {}
        Ok(_) => {
            eprintln!("`{}` failed in {}", args.join(" "), ui.display());
            exit(1);
        }
        Err(e) => {
            eprintln!("cannot run {program} (the window needs Node.js 20 with npm): {e}");
            exit(1);
        }
    }
}

fn main() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    for watched in [
        "src",
        "build.mjs",
        "package.json",
        "package-lock.json",
        "../../locales",
    ] {
        println!("cargo:rerun-if-changed={}", ui.join(watched).display());
    }
    if !ui.join("node_modules").exists() {
        run(&ui, &["npm", "ci", "--no-audit", "--no-fund"]);
    }
    run(&ui, &["node", "build.mjs"]);
    tauri_build::build();
}
