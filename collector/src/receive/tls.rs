//! TLS for the receivers' listener: the certificate and key from PEM files, rustls with the `ring`
//! provider, and a connection loop (tokio-rustls + hyper-util) that serves the same router as the
//! plain listener and drains open connections on shutdown.

use super::{ReceiverConfig, ReceiverError};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A TLS handshake that takes longer is dropped, so slow or idle clients cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Serves `router` over TLS on `listener` until `shutdown`, then lets open connections finish
/// (at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed.");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out.");
                    return;
                }
            };
            let conn = builder.serve_connection(TokioIo::new(tls), service).into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "Connection ended with an error.");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("Open receiver connections did not finish in time; closing them.");
    }
    Ok(())
}
