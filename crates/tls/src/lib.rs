//! TLS client settings shared by everything of ours that connects out: the client's relay
//! and push channel, the mail intake's IMAP, the relay's PostgreSQL. One place decides the
//! roots (the system's, plus an office's own CA) and the protocol versions (rustls's safe
//! defaults, ring as the provider).
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

/// A rustls client configuration with the system's roots plus the PEM certificates of
/// `extra_ca` (an office's own CA; `what` names it in errors).
pub fn client_config(
    extra_ca: Option<&Path>,
    what: &str,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {what}: {e}"))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("{what} is not PEM: {e}"))?;
            roots.add(cert).map_err(|e| format!("{what}: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{what} holds no PEM certificate"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_or_not_pem_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("ledgerline-tls-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let missing = client_config(Some(&dir.join("absent.pem")), "the office CA");
        assert!(matches!(&missing, Err(e) if e.starts_with("cannot read the office CA")));
        let garbage = dir.join("garbage.pem");
        let _ = std::fs::write(&garbage, b"not a certificate");
        let refused = client_config(Some(&garbage), "the office CA");
        assert!(
            matches!(&refused, Err(e) if e.contains("no PEM certificate")),
            "{refused:?}"
        );
        assert!(client_config(None, "none").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
