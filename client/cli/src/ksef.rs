//! `ledgerline ksef …`: each customer's e-invoices fetched from KSeF on this device and
//! kept encrypted in the customer's file (`protocol-spec/ksef.md`).

use super::{file_of, secret_input, terminal_bar, usage, Failure, Output};
use clap::Subcommand;
use ledgerline_client_core::chrono::NaiveDate;
use ledgerline_client_core::ksef::api::Environment;
use ledgerline_client_core::profile::{InvoiceView, KsefFileReport, Profile};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub(crate) enum KsefCmd {
    /// A customer file's KSeF token.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Fetch new invoices from KSeF: one customer file, or every file with a token (--all).
    Sync {
        /// Customer file (name or id).
        file: Option<String>,
        /// Every customer file with a KSeF token.
        #[arg(long, conflicts_with = "file")]
        all: bool,
    },
    /// The invoices of a customer file.
    Invoices {
        /// Customer file (name or id).
        file: String,
    },
    /// Customer files with a KSeF token and how far their fetch has come.
    Status,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// Set a customer file's KSeF token: checked by logging in, then kept encrypted in the
    /// file (colleagues with access sync with it; the relay never sees it).
    Set {
        /// Customer file (name or id).
        file: String,
        /// Context NIP (default: the NIP on the customer's card).
        #[arg(long)]
        nip: Option<String>,
        /// KSeF environment: test, demo or prod.
        #[arg(long, default_value = "prod")]
        env: String,
        /// Fetch invoices stored from this day (YYYY-MM-DD; default: the first of last
        /// month).
        #[arg(long)]
        since: Option<String>,
        /// Read the token from the first line of stdin.
        #[arg(long)]
        token_stdin: bool,
    },
    /// Remove a customer file's KSeF token (its invoices stay).
    Remove {
        /// Customer file (name or id).
        file: String,
    },
}

fn invoice_line(v: &InvoiceView) -> String {
    let short = v.id.to_string();
    let id = short.get(..12).unwrap_or(&short);
    let what = match &v.invoice {
        Some(i) => format!(
            "{}  {}  {:<8}  {}  {} → {}  net {} VAT {} due {} {}{}",
            id,
            i.issued,
            v.direction,
            i.number,
            i.seller.name,
            if i.buyer.name.is_empty() {
                "?"
            } else {
                &i.buyer.name
            },
            i.net,
            i.vat,
            i.gross,
            i.currency,
            i.due
                .first()
                .map(|d| format!(" (pay by {d})"))
                .unwrap_or_default()
        ),
        None => format!("{id}  {}  {:<8}  unreadable", v.stored, v.direction),
    };
    let mut line = format!("{what}  [{}]", v.ksef_number);
    for w in &v.warnings {
        line.push_str(&format!("\n    ⚠ {w}"));
    }
    line
}

fn summary(r: &KsefFileReport) -> String {
    let name = r
        .file_name
        .clone()
        .or_else(|| r.file.map(|f| f.to_string()))
        .unwrap_or_default();
    let mut s = format!(
        "{name} (NIP {}): {} new sales, {} new purchase invoice(s), {} already here, {} payment task(s){}",
        r.nip,
        r.sales,
        r.purchases,
        r.known,
        r.tasks,
        if r.waited > 0 {
            format!(", waited out {} rate limit(s)", r.waited)
        } else {
            String::new()
        }
    );
    for (n, w) in &r.warnings {
        s.push_str(&format!("\n    ⚠ {n}: {w}"));
    }
    if let Some(stop) = &r.stopped {
        s.push_str(&format!(
            "\n    stopped: {stop}; the next sync goes on from here"
        ));
    }
    s
}

pub(crate) async fn ksef(p: &mut Profile, cmd: KsefCmd, json: bool) -> Result<Output, Failure> {
    match cmd {
        KsefCmd::Token(TokenCmd::Set {
            file,
            nip,
            env,
            since,
            token_stdin,
        }) => {
            let env =
                Environment::parse(&env).ok_or_else(|| usage("--env is test, demo or prod"))?;
            let since = since
                .map(|s| {
                    s.parse::<NaiveDate>()
                        .map_err(|_| usage("--since is a day, YYYY-MM-DD"))
                })
                .transpose()?;
            let file = file_of(p, &file).await?;
            let token = secret_input(
                token_stdin,
                "LEDGERLINE_KSEF_TOKEN",
                "KSeF token: ",
                "--token-stdin",
            )?;
            let v = p
                .ksef_token_set(file, &token, nip.as_deref(), env, since)
                .await?;
            Ok(Output {
                text: format!(
                    "KSeF token of {} (NIP {}, {}) checked and kept encrypted in the file; invoices from {} on. `ledgerline ksef sync` fetches them.",
                    v.file_name.clone().unwrap_or_else(|| v.file.to_string()),
                    v.nip,
                    v.environment,
                    v.since
                ),
                json: json!(v),
            })
        }
        KsefCmd::Token(TokenCmd::Remove { file }) => {
            let file = file_of(p, &file).await?;
            p.ksef_token_remove(file).await?;
            Ok(Output {
                text: "The KSeF token is removed; the file's invoices stay.".into(),
                json: json!({ "removed": file }),
            })
        }
        KsefCmd::Sync { file, all } => {
            let file = match (file, all) {
                (Some(f), false) => Some(file_of(p, &f).await?),
                (None, true) => None,
                _ => return Err(usage("name a customer file or give --all")),
            };
            // Settings and known invoices as colleagues left them.
            p.sync().await?;
            let bar = terminal_bar(json, "ksef {msg} [{bar:40}] {pos}/{len}");
            let b = bar.clone();
            let report = p
                .ksef_sync(file, &move |name, done, total| {
                    if let Some(b) = &b {
                        b.set_message(name.to_owned());
                        b.set_length(total);
                        b.set_position(done);
                    }
                })
                .await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let r = report?;
            let text = r.files.iter().map(summary).collect::<Vec<_>>().join("\n");
            if r.files.iter().any(|f| f.stopped.is_some()) {
                // What was fetched is kept; scripts learn that not everything was.
                if json {
                    println!("{}", json!(r));
                }
                return Err(Failure {
                    exit: 10,
                    code: "ksef",
                    reason: None,
                    message: text,
                });
            }
            Ok(Output {
                text,
                json: json!(r),
            })
        }
        KsefCmd::Invoices { file } => {
            let file = file_of(p, &file).await?;
            p.sync().await?;
            let list = p.invoices(file)?;
            Ok(Output {
                text: list.iter().map(invoice_line).collect::<Vec<_>>().join("\n"),
                json: json!({ "invoices": list }),
            })
        }
        KsefCmd::Status => {
            p.sync().await?;
            let list = p.ksef_list()?;
            Ok(Output {
                text: list
                    .iter()
                    .map(|v| {
                        format!(
                            "{}  NIP {}  {}  {} invoice(s); sales to {}, purchases to {}",
                            v.file_name.clone().unwrap_or_else(|| v.file.to_string()),
                            v.nip,
                            v.environment,
                            v.invoices,
                            v.cursor_sales.as_deref().unwrap_or(&v.since),
                            v.cursor_purchases.as_deref().unwrap_or(&v.since),
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!({ "files": list }),
            })
        }
    }
}
