//! A throwaway local CA for trying TLS and mTLS (`baton dev --tls`): a CA,
//! a server certificate for `localhost`, `127.0.0.1` and `::1`, and a
//! client certificate, written as PEM files. Never for production: the CA
//! key lies next to the certificates it signed.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::{ClientTlsFiles, TlsConfig};

/// The files [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCa {
    /// The CA certificate: trust it in clients, and as the servers' client CA.
    pub ca_cert: PathBuf,
    /// The CA's private key.
    pub ca_key: PathBuf,
    /// The server certificate (localhost, 127.0.0.1, ::1) and its key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate (CN `baton-dev-client`) and its key, for mTLS.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl DevCa {
    /// The server settings, with mTLS (clients need the client certificate).
    pub fn server_config(&self) -> TlsConfig {
        TlsConfig::new(&self.server_cert, &self.server_key).with_client_ca(&self.ca_cert)
    }

    /// The client settings, with the client certificate.
    pub fn client_files(&self) -> ClientTlsFiles {
        ClientTlsFiles {
            ca_file: self.ca_cert.clone(),
            cert_file: Some(self.client_cert.clone()),
            key_file: Some(self.client_key.clone()),
            server_name: None,
        }
    }
}

/// Why the dev CA could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevCaError {
    #[error("generating a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Valid from the start of this year to the start of the year after next:
/// long enough for trials, short enough not to outlive them much.
fn validity(params: &mut CertificateParams) {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let year = 1970 + i32::try_from(seconds / 31_556_952).unwrap_or(0);
    params.not_before = rcgen::date_time_ymd(year, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Baton development");
    name.push(DnType::CommonName, common_name);
    name
}

fn leaf(
    common_name: &str,
    subject_alt_names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), DevCaError> {
    let mut params = CertificateParams::new(subject_alt_names)?;
    params.distinguished_name = name(common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), DevCaError> {
    use std::io::Write;
    let error = |source| DevCaError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(error)?;
    file.write_all(contents.as_bytes()).map_err(error)
}

/// Makes a new CA, server and client certificate in `dir` (created when
/// missing), replacing any there: `ca.pem`, `ca-key.pem`, `server.pem`,
/// `server-key.pem`, `client.pem`, `client-key.pem`.
pub fn generate(dir: &Path) -> Result<DevCa, DevCaError> {
    std::fs::create_dir_all(dir).map_err(|source| DevCaError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("Baton development CA (throwaway)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca_params);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let (server_cert, server_key) = leaf(
        "localhost",
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    )?;
    let (client_cert, client_key) = leaf(
        "baton-dev-client",
        vec!["baton-dev-client".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
    )?;

    let ca = DevCa {
        ca_cert: dir.join("ca.pem"),
        ca_key: dir.join("ca-key.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client-key.pem"),
    };
    write(&ca.ca_cert, &ca_cert.pem(), false)?;
    write(&ca.ca_key, &ca_key_pem, true)?;
    write(&ca.server_cert, &server_cert, false)?;
    write(&ca.server_key, &server_key, true)?;
    write(&ca.client_cert, &client_cert, false)?;
    write(&ca.client_key, &client_key, true)?;
    Ok(ca)
}
