//! TLS for the wire server (rustls, ring): `--tls-cert` and `--tls-key`
//! (PEM files) turn it on; clients then negotiate it with PostgreSQL's
//! SSLRequest (`sslmode=require`, `verify-full`). With `--tls-required`,
//! a client that does not is refused (28000) before it can send a password.

use std::path::Path;
use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Result, SluiceError};

/// An acceptor for the certificate chain in `cert` and the key in `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        SluiceError::Options(format!("{what} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("cannot read the certificate", cert, &e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("cannot read the certificate", cert, &e))?;
    if certs.is_empty() {
        return Err(SluiceError::Options(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("cannot read the key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SluiceError::Options(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SluiceError::Options(format!("TLS certificate and key: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
