//! HTTPS on the listener: `[tls] cert_file` and `key_file` (PEM) turn it on.
//!
//! The certificate chain and key are read and checked at start-up, before anything else
//! starts, and every problem names the file and what is wrong with it. Connections are
//! served by `axum-server` with rustls (the `ring` provider, TLS 1.2 and 1.3, ALPN `h2` and
//! `http/1.1`); a handshake that does not finish within 10 s is dropped. Without `[tls]`,
//! plain HTTP is served by `axum-server` too (behind a TLS-terminating gateway, say). Either
//! way a request head must arrive within [`HEADER_READ_TIMEOUT`] (slow-loris), and shutdown
//! is graceful: the listener stops accepting, requests in flight finish.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::Router;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long requests in flight may take to finish once shutdown is asked for.
/// (Event streams end on the shutdown token at once.)
const GRACE: Duration = Duration::from_secs(30);

/// How long a client may take to send a request's head (request line and headers).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `[tls]`: both or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The private key of the leaf certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => bail!("tls.cert_file is set but tls.key_file is not: set both"),
            (None, Some(_)) => bail!("tls.key_file is set but tls.cert_file is not: set both"),
            _ => Ok(()),
        }
    }

    /// Whether HTTPS is configured.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    /// The rustls configuration, when `[tls]` is set; an error naming the file otherwise.
    pub fn load(&self) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
        self.validate()?;
        let (Some(cert_file), Some(key_file)) = (&self.cert_file, &self.key_file) else {
            return Ok(None);
        };
        let certs = read_certs(cert_file)?;
        let key = read_key(key_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| {
                anyhow::anyhow!(
                    "tls.key_file {}: the private key is not usable: {e}",
                    key_file.display()
                )
            })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("tls: rustls refused its default protocol versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
                    "tls.key_file {} is not the key of the certificate in tls.cert_file {}",
                    key_file.display(),
                    cert_file.display()
                ),
                e => anyhow::anyhow!(
                    "tls.cert_file {}: the certificate is not usable: {e}",
                    cert_file.display()
                ),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

fn read(path: &Path, key: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("tls.{key} {}: cannot read it", path.display()))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = read(path, "cert_file")?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow::anyhow!(
                "tls.cert_file {}: not valid PEM: {}",
                path.display(),
                pem_error(&e)
            )
        })?;
    if certs.is_empty() {
        bail!(
            "tls.cert_file {}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let bytes = read(path, "key_file")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => anyhow::anyhow!(
            "tls.key_file {}: no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----, \
             or an RSA or EC private key)",
            path.display()
        ),
        e => anyhow::anyhow!(
            "tls.key_file {}: not valid PEM: {}",
            path.display(),
            pem_error(&e)
        ),
    })
}

/// A PEM error's description. Never the file's bytes: a key file's content is a secret.
fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a section's base64 does not decode".to_owned(),
        pem::Error::Io(e) => e.to_string(),
        pem::Error::NoItemsFound => "nothing found".to_owned(),
        _ => "unreadable".to_owned(),
    }
}

/// Serves `app` on `listener` until `shutdown`, over HTTPS when `tls` is given.
pub fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let listener = listener
        .into_std()
        .context("cannot hand the listener to the HTTP server")?;
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.graceful_shutdown(Some(GRACE));
        });
    }
    let Some(tls) = tls else {
        let mut server = axum_server::from_tcp(listener).handle(handle);
        limit_header_reads(server.http_builder());
        return Ok(tokio::spawn(async move {
            server.serve(app.into_make_service()).await
        }));
    };
    let mut server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .handle(handle);
    limit_header_reads(server.http_builder());
    Ok(tokio::spawn(async move {
        server.serve(app.into_make_service()).await
    }))
}

/// Gives hyper a timer, without which its HTTP/1 header-read timeout is off: a slow-loris
/// client (a request head sent a byte at a time, or never finished) would hold its
/// connection for as long as it liked. With it, a head not complete within
/// [`HEADER_READ_TIMEOUT`] (also the idle time allowed between keep-alive requests) closes
/// the connection. `axum::serve` sets no timer and has no way to, hence `axum-server` for
/// plain HTTP too.
fn limit_header_reads(builder: &mut hyper_util::server::conn::auto::Builder<TokioExecutor>) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
}
