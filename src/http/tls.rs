//! TLS for the HTTPS listener: the self-signed certificate kept in `<data>/keys`, a
//! configured PEM pair (reloadable), and the rustls server config (ring, TLS 1.3 by
//! default, ALPN h2 + http/1.1). It never serves plain HTTP and never weakens the versions.

use crate::config::{Config, TlsMode, TlsVersion};
use crate::error::{Error, Result};
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const SELF_SIGNED_CERT: &str = "tls-cert.pem";
pub const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// The certificate the HTTPS listener serves, and where it came from.
#[derive(Clone)]
pub struct Tls {
    pub config: RustlsConfig,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    min_version: TlsVersion,
    fingerprint: Arc<std::sync::Mutex<String>>,
}

impl Tls {
    /// Builds the listener's TLS from the config, generating the self-signed pair on first
    /// start. `None` when TLS is off (`tls.mode = "off_behind_proxy"`).
    pub fn prepare(config: &Config) -> Result<Option<Tls>> {
        let (cert_path, key_path) = match config.tls.mode {
            TlsMode::OffBehindProxy => return Ok(None),
            TlsMode::SelfSigned => ensure_self_signed(&config.keys_dir(), &config.tls.hosts)?,
            TlsMode::Files => match (&config.tls.cert_path, &config.tls.key_path) {
                (Some(c), Some(k)) => (c.clone(), k.clone()),
                _ => {
                    return Err(Error::Internal(
                        "tls.mode = \"files\" needs tls.cert_path and tls.key_path".into(),
                    ));
                }
            },
        };
        let (server_config, fingerprint) =
            load_server_config(&cert_path, &key_path, config.tls.min_version)?;
        Ok(Some(Tls {
            config: RustlsConfig::from_config(Arc::new(server_config)),
            cert_path,
            key_path,
            min_version: config.tls.min_version,
            fingerprint: Arc::new(std::sync::Mutex::new(fingerprint)),
        }))
    }

    /// SHA-256 of the served certificate (DER), as colon-separated upper-case hex.
    pub fn fingerprint(&self) -> String {
        self.fingerprint
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// Re-reads the PEM pair. If the new pair is unusable the old one keeps being served
    /// and the error is returned, so a bad deploy never takes the site down.
    pub fn reload(&self) -> Result<()> {
        let (server_config, fingerprint) =
            load_server_config(&self.cert_path, &self.key_path, self.min_version)?;
        self.config.reload_from_config(Arc::new(server_config));
        if let Ok(mut f) = self.fingerprint.lock() {
            *f = fingerprint;
        }
        Ok(())
    }
}

/// The rustls config: ring only, the configured minimum version, ALPN h2 then http/1.1.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    min_version: TlsVersion,
) -> Result<ServerConfig> {
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| Error::Internal(format!("tls versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Internal(format!("tls certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// SHA-256 of a DER certificate, as `AB:CD:...` (the form browsers and openssl show).
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    let hex = hex::encode_upper(digest);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

fn load_server_config(
    cert_path: &Path,
    key_path: &Path,
    min_version: TlsVersion,
) -> Result<(ServerConfig, String)> {
    let cert_pem = fs::read(cert_path)
        .map_err(|e| Error::Internal(format!("tls certificate {}: {e}", cert_path.display())))?;
    let key_pem = fs::read(key_path)
        .map_err(|e| Error::Internal(format!("tls key {}: {e}", key_path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("tls certificate {}: {e}", cert_path.display())))?;
    let Some(leaf) = certs.first() else {
        return Err(Error::Internal(format!(
            "tls certificate {}: no CERTIFICATE block found",
            cert_path.display()
        )));
    };
    let fp = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| Error::Internal(format!("tls key {}: {e}", key_path.display())))?;
    Ok((server_config(certs, key, min_version)?, fp))
}

/// Returns the self-signed pair under `keys_dir`, generating it if either file is missing.
/// Reusing it keeps the fingerprint stable, so users pin or trust it once.
fn ensure_self_signed(keys_dir: &Path, hosts: &[String]) -> Result<(PathBuf, PathBuf)> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Error::Internal(format!("{what} {}: {e}", p.display()))
    };
    if !keys_dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(keys_dir)
            .map_err(|e| io("cannot create", keys_dir, e))?;
    }
    let cert_path = keys_dir.join(SELF_SIGNED_CERT);
    let key_path = keys_dir.join(SELF_SIGNED_KEY);
    if cert_path.exists() && key_path.exists() {
        tighten(&key_path)?;
        return Ok((cert_path, key_path));
    }
    let generated = rcgen::generate_simple_self_signed(hosts.to_vec()).map_err(|e| {
        Error::Internal(format!("cannot generate a certificate for tls.hosts: {e}"))
    })?;
    // Key first: a crash between the two writes leaves no cert, so the next start
    // regenerates both instead of pairing a cert with a stranger key.
    write_atomically(
        &key_path,
        generated.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_atomically(&cert_path, generated.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(
        tls.cert = %cert_path.display(),
        tls.hosts = ?hosts,
        "generated a self-signed TLS certificate"
    );
    Ok((cert_path, key_path))
}

/// A key file readable by others is fixed rather than refused: the key is ours.
fn tighten(key_path: &Path) -> Result<()> {
    let meta = fs::metadata(key_path)
        .map_err(|e| Error::Internal(format!("tls key {}: {e}", key_path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(tls.key = %key_path.display(), "tls key was readable by others; set to 0600");
        fs::set_permissions(key_path, fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Internal(format!("tls key {}: {e}", key_path.display())))?;
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let err = |e: std::io::Error| Error::Internal(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension("pem.tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_hex_of_sha256() {
        let fp = fingerprint(b"abc");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.starts_with("BA:78:16:BF"), "{fp}");
    }

    #[test]
    fn self_signed_is_generated_once_with_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let (c1, k1) = ensure_self_signed(&keys, &hosts).unwrap();
        let first = fs::read(&c1).unwrap();
        assert_eq!(
            fs::metadata(&k1).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let (c2, _) = ensure_self_signed(&keys, &hosts).unwrap();
        assert_eq!(first, fs::read(c2).unwrap());
    }
}
