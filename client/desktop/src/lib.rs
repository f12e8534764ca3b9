//! The Ledgerline desktop app (Tauri 2). The window (`ui/`) holds no keys and no protocol
//! logic: every action is one of the commands in [`commands`], each a thin wrapper over
//! `ledgerline-client-core`, which decrypts, verifies and keeps the encrypted local store.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod commands;
pub mod documents;
pub mod guests;
pub mod ksef;
pub mod live;
pub mod mail;
pub mod work;

use clap::Parser;
use std::path::PathBuf;

/// Command-line options of the app.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ledgerline-desktop",
    version,
    about = "The Ledgerline desktop app"
)]
pub struct Args {
    /// The device profile: a directory holding the encrypted local store
    /// [default: ~/.ledgerline/default, shared with the `ledgerline` CLI].
    #[arg(long, env = "LEDGERLINE_PROFILE", value_name = "DIR")]
    pub profile: Option<PathBuf>,
    /// The relay offered when founding or joining a firm.
    #[arg(
        long,
        env = "LEDGERLINE_RELAY",
        value_name = "URL",
        default_value = "http://127.0.0.1:8448"
    )]
    pub relay: String,
}

/// Runs the app until its window closes.
pub fn run(args: Args) -> std::process::ExitCode {
    let Some(dir) = args.profile.clone().or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ledgerline").join("default"))
    }) else {
        eprintln!("ledgerline-desktop: no --profile given and no HOME to default to");
        return std::process::ExitCode::from(2);
    };
    let desk = match commands::Desk::new(dir, args.relay) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ledgerline-desktop: cannot start the profile's thread: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let built = tauri::Builder::default()
        .setup(|app| {
            use tauri::Manager;
            app.state::<commands::Desk>().attach(app.handle().clone());
            Ok(())
        })
        .plugin(tauri_plugin_dialog::init())
        .manage(desk)
        .invoke_handler(tauri::generate_handler![
            commands::app_state,
            commands::unlock_profile,
            commands::change_passphrase,
            commands::create_firm,
            commands::join_firm,
            commands::recover_member,
            commands::sync,
            commands::live_state,
            commands::customers,
            commands::customer_add,
            commands::timeline,
            commands::chat_read,
            commands::chat_send,
            commands::chat_edit,
            commands::chat_delete,
            guests::conversation_read,
            guests::conversation_send,
            guests::conversation_share,
            guests::conversation_download,
            guests::guest_invite,
            commands::tasks,
            commands::task_add,
            commands::note_add,
            admin::team_create,
            admin::team_add,
            admin::team_remove,
            admin::team_grant,
            work::reply_templates,
            work::reply_set,
            work::reply_delete,
            work::reply_render,
            admin::office,
            admin::invite,
            admin::approve,
            admin::grant,
            admin::remove_access,
            admin::revoke_plan,
            admin::revoke,
            admin::revoke_device,
            admin::cover_grant,
            admin::cover_end,
            documents::documents,
            documents::doc_upload,
            documents::doc_download,
            documents::chat_attach,
            documents::doc_preview,
            documents::choose_files,
            documents::choose_save,
            work::board,
            work::task_done,
            work::agenda,
            work::lead_add,
            work::lead_stage,
            work::lead_convert,
            work::offers,
            work::offer_add,
            work::offer_status,
            work::search,
            work::set_relay,
            audit::audit_export,
            audit::audit_verify,
            ksef::ksef_settings,
            ksef::ksef_token_set,
            ksef::ksef_sync,
            ksef::ksef_invoices,
            mail::mail_boxes,
            mail::mail_connect,
            mail::mail_disconnect,
            mail::mail_fetch,
            mail::mail_inbox,
            mail::mail_assign,
            mail::mail_rules,
            mail::mail_rule_remove,
            mail::mail_read,
        ])
        .run(tauri::generate_context!());
    match built {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledgerline-desktop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
