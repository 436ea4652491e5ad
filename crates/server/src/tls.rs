//! TLS from PEM files, via rustls (ring provider).

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Builds a server configuration from a PEM certificate chain and a PEM
/// private key; `key` may be the same file as `cert` (a combined PEM).
pub fn server_config(cert: &Path, key: Option<&Path>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("server.tls_cert = {}: cannot read", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("server.tls_cert = {}: malformed PEM", cert.display()))?;
    if certs.is_empty() {
        bail!(
            "server.tls_cert = {}: no CERTIFICATE block found",
            cert.display()
        );
    }
    let key_path = key.unwrap_or(cert);
    let key = PrivateKeyDer::from_pem_file(key_path).with_context(|| {
        format!(
            "{} = {}: no private key found (give it with --tls-key / server.tls_key)",
            if key.is_some() {
                "server.tls_key"
            } else {
                "server.tls_cert"
            },
            key_path.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match or are unsupported")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
