//! The TLS client configuration every transport that speaks TLS uses: rustls with the `ring`
//! provider and certificate verification on, against the system's roots or a CA file the URL
//! names. Behind the `tls` feature, so that transports without TLS build no TLS.

use std::{path::Path, sync::Arc};

use crate::error::{TransportError, TransportErrorKind};
use rustls::pki_types::{CertificateDer, pem::PemObject};

/// A rustls client configuration that trusts the certificates in `ca` (a PEM file), or the
/// system's root certificates when there is none.
pub fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, TransportError> {
    let invalid =
        |message: String| TransportError::new(TransportErrorKind::InvalidAddress, message);
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| invalid(format!("cannot read CA file {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert
                    .map_err(|e| invalid(format!("bad PEM in CA file {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("bad certificate in {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(invalid(format!("CA file {} holds no certificates", path.display())));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "could not load some system root certificates");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(invalid(
                    "no system root certificates found; give a CA file with `?ca=/path/ca.pem`"
                        .into(),
                ));
            }
        }
    }
    // rustls asks libraries to use the provider the program installed; without one, ring.
    let provider = match rustls::crypto::CryptoProvider::get_default() {
        Some(installed) => Arc::clone(installed),
        None => Arc::new(ring_provider()),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether TLS refused the server's certificate somewhere down `error`'s causes, also where a
/// client library wraps rustls' error in an I/O error: a transport reports that as
/// `AccessDenied`, not as an unreachable server.
pub fn refused_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        let inner = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => Some(error),
        };
        if inner
            .is_some_and(|e| matches!(e.downcast_ref(), Some(rustls::Error::InvalidCertificate(_))))
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// rustls' *ring* provider.
///
/// rustls 0.23.48 deprecates it because *ring* has no post-quantum key exchange, and 0.23 has no
/// other way to name it. It stays the provider because the alternative, aws-lc-rs, needs a C
/// toolchain and cmake to build; a program that wants post-quantum key exchange installs
/// aws-lc-rs as the process default (`CryptoProvider::install_default`), which
/// [`client_config`] then uses instead.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
