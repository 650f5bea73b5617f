//! DKIM signing (RFC 6376; Ed25519 per RFC 8463): the key file read once per run, each
//! message signed once, by lettre's signer, just before it is handed to the transport.
//!
//! Two properties of lettre 0.11's signer decide how it is used here (found by verifying
//! its signatures with dkimpy; `tests/it/dkim.rs` keeps that check):
//!
//! - With `simple` header canonicalisation its signatures never verify: it hashes its own
//!   `DKIM-Signature` header folded as it is with an empty `b=` (which fits on the `bh=`
//!   line), but writes it with `b=` moved to a continuation line. `simple` is byte-exact,
//!   so the hashes differ. `relaxed` unfolds both the same way, so we sign `relaxed/relaxed`.
//! - It looks for signed headers among the message's own headers only, while a MIME body's
//!   `Content-Type` and `Content-Transfer-Encoding` are written by the body part. Listing
//!   them in `h=` signs them as absent, and verifiers, which see them, fail. So they are not
//!   listed; every header we write ourselves is.

use std::path::{Path, PathBuf};

use base64::Engine;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;

use crate::config::Dkim;

/// Headers covered by the signature. RFC 8058 requires the two `List-Unsubscribe` ones.
/// Those a message may lack (`Reply-To`, `In-Reply-To`, `References`) are listed anyway:
/// a verifier then also rejects a copy to which someone added one.
const SIGNED: &[&str] = &[
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Language",
];

/// RFC 8301: verifiers refuse RSA keys shorter than this.
const MIN_RSA_BITS: usize = 1024;

/// Signs messages for one domain with one key.
pub struct Signer {
    config: DkimConfig,
}

impl std::fmt::Debug for Signer {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot read the DKIM key {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the DKIM key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
}

impl DkimError {
    pub fn path(&self) -> &Path {
        match self {
            DkimError::Read { path, .. } | DkimError::Key { path, .. } => path,
        }
    }
}

impl Signer {
    /// The signer the config asks for, if any.
    pub fn from_config(config: &crate::config::Config) -> Result<Option<Signer>, DkimError> {
        config
            .mail
            .dkim
            .as_ref()
            .map(|dkim| Signer::load(dkim, config.mail.from.email.domain()))
            .transpose()
    }

    /// Reads the key named in the config; `domain` is the `d=` (the From address's domain,
    /// so the signature aligns for DMARC).
    pub fn load(dkim: &Dkim, domain: &str) -> Result<Signer, DkimError> {
        let path = &dkim.key.path;
        let pem = std::fs::read_to_string(path).map_err(|source| DkimError::Read {
            path: path.clone(),
            source,
        })?;
        let key = signing_key(&pem).map_err(|reason| DkimError::Key {
            path: path.clone(),
            reason,
        })?;
        let headers = SIGNED
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        Ok(Signer {
            config: DkimConfig::new(
                dkim.selector.clone(),
                domain.to_string(),
                key,
                headers,
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            ),
        })
    }

    /// Adds the `DKIM-Signature` header. lettre reads the clock for its `t=` tag; nothing
    /// we decide depends on it.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

/// A PEM private key as lettre takes it: RSA as PKCS#1 PEM, Ed25519 as its base64 seed.
fn signing_key(pem: &str) -> Result<DkimSigningKey, String> {
    use rsa::RsaPrivateKey;
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::PublicKeyParts;

    let rsa = RsaPrivateKey::from_pkcs1_pem(pem)
        .ok()
        .or_else(|| RsaPrivateKey::from_pkcs8_pem(pem).ok());
    if let Some(rsa) = rsa {
        let bits = rsa.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "an RSA key of {bits} bits is too short: verifiers refuse keys under {MIN_RSA_BITS} bits (make one of 2048)"
            ));
        }
        let pkcs1 = rsa
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|e| format!("cannot re-encode the RSA key: {e}"))?;
        return DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
            .map_err(|e| format!("lettre refused the RSA key: {e}"));
    }
    if let Ok(ed25519) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        let seed = base64::engine::general_purpose::STANDARD.encode(ed25519.to_bytes());
        return DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
            .map_err(|e| format!("lettre refused the Ed25519 key: {e}"));
    }
    Err(if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        "the key is encrypted with a passphrase; pressroom needs it unencrypted (readable by pressroom only)".into()
    } else {
        "not a private key in PEM: expected RSA (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 `BEGIN PRIVATE KEY`) or Ed25519 (PKCS#8)".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anything_but_a_private_key_is_refused_with_a_reason() {
        let not_pem = signing_key("hello").err().unwrap_or_default();
        assert!(not_pem.starts_with("not a private key in PEM"), "{not_pem}");
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert!(signing_key(public).is_err());
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let reason = signing_key(encrypted).err().unwrap_or_default();
        assert!(reason.contains("passphrase"), "{reason}");
    }

    #[test]
    fn an_ed25519_pkcs8_key_is_taken() {
        // RFC 8410 §10.3's example key.
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        assert!(signing_key(pem).is_ok());
    }
}
