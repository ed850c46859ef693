//! TLS for the receivers' listener: the certificate and key from PEM files, rustls with the `ring`
//! provider. The connections are served by [`crate::listen::serve`] (handshake within
//! `header_read_timeout_secs`, then the same bounds as plain HTTP).

use super::{ReceiverConfig, ReceiverError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

fn file_error(what: &'static str, path: &Path, reason: impl ToString) -> ReceiverError {
    ReceiverError::TlsFile {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The rustls server settings `cfg` asks for: `None` for plain HTTP, an error when only one of
/// the certificate and the key is given or they cannot be used.
pub fn server_config(cfg: &ReceiverConfig) -> Result<Option<Arc<rustls::ServerConfig>>, ReceiverError> {
    let (cert_path, key_path) = match (&cfg.tls_cert_file, &cfg.tls_key_file) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => return Err(ReceiverError::TlsHalfConfigured { given: "tls_cert_file" }),
        (None, Some(_)) => return Err(ReceiverError::TlsHalfConfigured { given: "tls_key_file" }),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| file_error("certificate", cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("certificate", cert_path, e))?;
    if certs.is_empty() {
        return Err(file_error("certificate", cert_path, "no CERTIFICATE block in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| file_error("private key", key_path, e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(ReceiverError::Tls)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(ReceiverError::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
