//! Opt-out tokens. An unsubscribe link names the address it unsubscribes and carries an
//! HMAC-SHA256 over it, keyed by a secret only this installation holds, so nobody can opt
//! out someone else. The secret is created at first use in the state folder (mode 0600) or
//! read from systemd's credentials directory. Tokens are checked in constant time.
//!
//! A token is `base64url(address) "." base64url(mac)`; the address is lowercased first, so
//! a token is valid however the media list spells it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The credential name (under `$CREDENTIALS_DIRECTORY`) and file name (in the state folder).
pub const KEY_NAME: &str = "unsubscribe-key";
const KEY_BYTES: usize = 32;

/// The secret that signs unsubscribe links.
#[derive(Clone)]
pub struct TokenKey([u8; KEY_BYTES]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the unsubscribe key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the unsubscribe key {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the unsubscribe key {path} is {len} bytes (expected at least {KEY_BYTES})")]
    Short { path: PathBuf, len: usize },
    #[error("no randomness for a new unsubscribe key: {0}")]
    Random(String),
}

impl TokenKey {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> TokenKey {
        TokenKey(bytes)
    }

    /// The credential if systemd passed one, else `state_dir/unsubscribe-key`, created with
    /// fresh random bytes and mode 0600 if it does not exist yet.
    pub fn load_or_create(
        state_dir: &Path,
        credentials: Option<&Path>,
    ) -> Result<TokenKey, KeyError> {
        if let Some(dir) = credentials {
            let path = dir.join(KEY_NAME);
            if path.exists() {
                return read_key(&path);
            }
        }
        let path = state_dir.join(KEY_NAME);
        match read_key(&path) {
            Ok(key) => Ok(key),
            Err(KeyError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                create_key(&path)
            }
            Err(e) => Err(e),
        }
    }

    fn mac(&self, address: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(b"pressroom unsubscribe v1\n");
        mac.update(address.as_bytes());
        mac
    }

    /// The token that unsubscribes `address`.
    pub fn token(&self, address: &str) -> String {
        let address = address.trim().to_lowercase();
        let tag = self.mac(&address).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(address.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The address a token unsubscribes, if the token is genuine.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (address, tag) = token.trim().split_once('.')?;
        let address = String::from_utf8(URL_SAFE_NO_PAD.decode(address).ok()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if address != address.to_lowercase() {
            return None;
        }
        // `verify_slice` compares in constant time and refuses truncated tags.
        self.mac(&address).verify_slice(&tag).ok()?;
        Some(address)
    }
}

fn read_key(path: &Path) -> Result<TokenKey, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes: [u8; KEY_BYTES] = bytes
        .get(..KEY_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or(KeyError::Short {
            path: path.to_path_buf(),
            len: bytes.len(),
        })?;
    Ok(TokenKey(bytes))
}

fn create_key(path: &Path) -> Result<TokenKey, KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    let err = |source| KeyError::Create {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // create_new: two processes starting at once must not each write a different key.
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(mut file) => {
            file.write_all(&bytes).map_err(err)?;
            file.sync_all().map_err(err)?;
            Ok(TokenKey(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> TokenKey {
        TokenKey([n; KEY_BYTES])
    }

    #[test]
    fn a_token_names_its_address_whatever_the_case() {
        let t = key(1).token("Anna.Lind@Example.org");
        assert_eq!(key(1).verify(&t).as_deref(), Some("anna.lind@example.org"));
    }

    #[test]
    fn forged_truncated_and_foreign_tokens_are_refused() {
        let k = key(1);
        let t = k.token("anna@example.org");
        assert_eq!(key(2).verify(&t), None, "another installation's key");
        assert_eq!(k.verify(&t[..t.len() - 1]), None, "truncated");
        let (_, tag) = t.split_once('.').unwrap();
        let other = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("bo@example.org"));
        assert_eq!(k.verify(&other), None, "another address with this tag");
        assert_eq!(k.verify(""), None);
        assert_eq!(k.verify("."), None);
        assert_eq!(k.verify("YW5uYUBleGFtcGxlLm9yZw"), None, "no tag");
    }

    #[test]
    fn the_key_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = TokenKey::load_or_create(dir.path(), None).unwrap();
        let b = TokenKey::load_or_create(dir.path(), None).unwrap();
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(dir.path().join(KEY_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join(KEY_NAME), [7u8; 32]).unwrap();
        let c = TokenKey::load_or_create(dir.path(), Some(creds.path())).unwrap();
        assert_eq!(c.0, [7u8; 32], "systemd's credential wins");
    }
}
