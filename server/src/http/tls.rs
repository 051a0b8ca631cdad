//! HTTPS on the S3 port (DESIGN D43): rustls (aws-lc-rs) in user space, adapted to compio by
//! compio-tls. The certificate and key are read at start and again on SIGHUP: a reload swaps
//! the pair new handshakes get; connections already open keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use compio::net::TcpStream;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS session over a client's socket, once its handshake is done.
pub type TlsStream = compio_tls::TlsStream<TcpStream>;

/// The server's TLS settings: one per process, shared by every shard.
pub struct Tls {
    acceptor: compio_tls::TlsAcceptor,
    certs: Arc<Certs>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("cert", &self.certs.cert).field("key", &self.certs.key).finish()
    }
}

/// The certificate chain and key handshakes present, replaced whole by a reload.
#[derive(Debug)]
struct Certs {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1) that matches
/// its first certificate.
fn read_pair(cert: &Path, key: &Path, provider: &rustls::crypto::CryptoProvider) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert {}: no certificate in the file", cert.display()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, der, provider)
        .map_err(|e| format!("--tls-key {} does not fit --tls-cert {}: {e}", key.display(), cert.display()))
}

impl Tls {
    /// Loads the pair and builds the server's TLS configuration (TLS 1.2 and 1.3, ALPN
    /// `http/1.1`).
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let pair = read_pair(cert, key, &provider)?;
        let certs = Arc::new(Certs {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider: provider.clone(),
            current: RwLock::new(Arc::new(pair)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: compio_tls::TlsAcceptor::from(Arc::new(config)), certs })
    }

    /// Reads the files again (SIGHUP); on success new handshakes present the new pair. On
    /// failure the old pair stays.
    pub fn reload(&self) -> Result<(), String> {
        let pair = read_pair(&self.certs.cert, &self.certs.key, &self.certs.provider)?;
        let mut current = self.certs.current.write().map_err(|_| "TLS: the certificate lock is poisoned".to_owned())?;
        *current = Arc::new(pair);
        Ok(())
    }

    /// Runs the server side of a handshake on an accepted socket.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream> {
        self.acceptor.accept(stream).await
    }
}

/// A blocking HTTPS connection of the operator's commands (`keel bucket props --endpoint
/// https://…`).
pub type ClientStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Connects to `host:port` over TLS, trusting the certificates in `AWS_CA_BUNDLE` when set (as
/// the aws CLI does), else the system's.
pub fn connect_blocking(addr: &str) -> Result<ClientStream, String> {
    let mut roots = rustls::RootCertStore::empty();
    match std::env::var_os("AWS_CA_BUNDLE") {
        Some(bundle) => {
            for c in CertificateDer::pem_file_iter(&bundle).map_err(|e| format!("AWS_CA_BUNDLE: {e}"))? {
                let c = c.map_err(|e| format!("AWS_CA_BUNDLE: {e}"))?;
                roots.add(c).map_err(|e| format!("AWS_CA_BUNDLE: {e}"))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| format!("TLS: {e}"))?;
    let sock = std::net::TcpStream::connect(addr).map_err(|e| format!("cannot reach {addr}: {e}"))?;
    Ok(rustls::StreamOwned::new(conn, sock))
}
