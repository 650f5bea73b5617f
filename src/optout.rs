//! Opt-out tokens. An unsubscribe link carries a token that only this installation can
//! make or read, keyed by a secret it alone holds, so nobody can opt out someone else, and
//! nobody who sees the link (a proxy's log, a link scanner) learns whose it is. The secret
//! is created at first use in the state folder (mode 0600) or read from systemd's
//! credentials directory. Tokens are checked in constant time.
//!
//! A token (format 2) is `base64url(2 ‖ tag ‖ ciphertext)`: the lowercased address, padded
//! to a multiple of 32 bytes (so its length shows only roughly), encrypted with ChaCha20
//! under a nonce that is the first 12 bytes of `tag = HMAC-SHA256(address)`, cut to 16
//! bytes; reading it decrypts and checks the tag. This is the SIV construction (RFC 5297's
//! idea, with HMAC and ChaCha20 in place of CMAC and AES-CTR): deterministic, so the same
//! address always gets the same token and a mail sent again is byte for byte the same,
//! and stateless, so no ledger row per recipient must exist before a mail is composed and
//! every token ever sent keeps working. The MAC and cipher keys are derived from the
//! secret, each for this one use.
//!
//! Format 1, `base64url(address) "." base64url(mac)`, carried the address readably; it is
//! never made anymore, but links already in mailboxes are still accepted (`verify`).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The credential name (under `$CREDENTIALS_DIRECTORY`) and file name (in the state folder).
pub const KEY_NAME: &str = "unsubscribe-key";
const KEY_BYTES: usize = 32;

/// The secret behind unsubscribe links, and the two keys derived from it for format 2.
#[derive(Clone)]
pub struct TokenKey {
    secret: [u8; KEY_BYTES],
    /// Keys the synthetic IV (the tag) of a format-2 token.
    siv: [u8; KEY_BYTES],
    /// Keys ChaCha20, which hides the address in a format-2 token.
    cipher: [u8; KEY_BYTES],
    /// Keys the hash an erased address leaves in the ledger (`ErasureKey`).
    erasure: [u8; KEY_BYTES],
}

/// The key of the one trace an erased address leaves (`erasures` in the ledger): a keyed
/// hash, HMAC-SHA256 under a key derived from the secret for this use alone (the sign-up
/// limit's keyed hash, `TokenKey::limit_key`, is written the same way under its own key). Whoever holds
/// the ledger file but not the secret cannot test a guessed address against it; the
/// program, which holds both, can tell that an address in a media list or a fill is one
/// that asked to be erased, and keeps it out of every mail.
#[derive(Clone)]
pub struct ErasureKey(Hmac<Sha256>);

impl std::fmt::Debug for ErasureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErasureKey(…)")
    }
}

impl ErasureKey {
    /// The hash of `address` (trimmed, lower-cased, so any spelling of it), as 64 hex
    /// digits. A fill tests every row against the erased ones, so the key's HMAC state is
    /// made once and cloned, and the digits are written without `format!`.
    pub fn hash(&self, address: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.0.clone();
        mac.update(address.trim().to_lowercase().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(2 * digest.len());
        for b in digest {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
        out
    }
}

/// The first byte of a format-2 token.
const FORMAT: u8 = 2;
/// What a timed link mailed from the preferences page does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// "Delete me": erases the address (`/erase/<token>`).
    Erase,
    /// "Subscribe again": lifts the opt-out (`/resubscribe/<token>`).
    Resubscribe,
}

impl Purpose {
    /// The token's first byte (2 is an unsubscribe token's).
    fn byte(self) -> u8 {
        match self {
            Purpose::Erase => 3,
            Purpose::Resubscribe => 4,
        }
    }
}
/// Bytes of the tag a format-2 token carries (128 bits, as in AES-SIV).
const TAG_BYTES: usize = 16;
/// The address is padded to a multiple of this, so a token's length says little about it.
const PAD: usize = 32;

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
    pub fn from_bytes(secret: [u8; KEY_BYTES]) -> TokenKey {
        let derive = |purpose: &[u8]| -> [u8; KEY_BYTES] {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret)
                .expect("HMAC takes keys of any length");
            mac.update(purpose);
            mac.finalize().into_bytes().into()
        };
        TokenKey {
            secret,
            siv: derive(b"pressroom unsubscribe v2 siv"),
            cipher: derive(b"pressroom unsubscribe v2 cipher"),
            erasure: derive(b"pressroom erasure v1"),
        }
    }

    /// The key of erased addresses' hashes (`ErasureKey`).
    pub fn erasure_key(&self) -> ErasureKey {
        ErasureKey(
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.erasure)
                .expect("HMAC takes keys of any length"),
        )
    }

    /// The key every command and the daemon use: systemd's credential if
    /// `$CREDENTIALS_DIRECTORY` holds one, else the state folder's (created at first use).
    pub fn for_state(state_dir: &Path) -> Result<TokenKey, KeyError> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        TokenKey::load_or_create(state_dir, credentials.as_deref())
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

    /// A keyed hash of an address (hex), for records that must recognise an address
    /// without holding it: the sign-up form's limit per address. Keyed so that nobody
    /// holding the ledger can test guessed addresses against it.
    pub fn limit_key(&self, address: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"pressroom signup limit v1\n");
        ErasureKey(mac).hash(address)
    }

    /// The format-1 MAC over an address.
    fn legacy_mac(&self, address: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"pressroom unsubscribe v1\n");
        mac.update(address.as_bytes());
        mac
    }

    /// The SIV MAC of a padded payload of a token of kind `kind` (2: unsubscribe, 3: erase,
    /// 4: subscribe again): its first 16 bytes are the token's tag.
    fn siv_mac(&self, kind: u8, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.siv)
            .expect("HMAC takes keys of any length");
        mac.update(&[kind]);
        mac.update(data);
        mac
    }

    /// `base64url(kind ‖ tag ‖ ChaCha20(payload ‖ 0x80 ‖ zeros))`: the payload padded to
    /// a multiple of PAD (ISO/IEC 7816-4 padding), tagged by its SIV MAC, encrypted under
    /// a nonce taken from the tag. Deterministic: the same payload, the same token.
    fn seal(&self, kind: u8, payload: &[u8]) -> String {
        let mut data = payload.to_vec();
        data.push(0x80);
        data.resize(data.len().div_ceil(PAD) * PAD, 0);
        let full = self.siv_mac(kind, &data).finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        self.apply_cipher(&tag, &mut data);
        let mut token = Vec::with_capacity(1 + TAG_BYTES + data.len());
        token.push(kind);
        token.extend_from_slice(&tag);
        token.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The payload a genuine token of kind `kind` seals (`seal`), or None: another kind,
    /// a bad length, a tag that does not verify (compared in constant time after
    /// decryption), or bad padding.
    fn open(&self, kind: u8, token: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let (&format, rest) = bytes.split_first()?;
        if format != kind || rest.len() <= TAG_BYTES {
            return None;
        }
        let (tag, data) = rest.split_at(TAG_BYTES);
        if data.len() % PAD != 0 {
            return None;
        }
        let tag: [u8; TAG_BYTES] = tag.try_into().ok()?;
        let mut data = data.to_vec();
        self.apply_cipher(&tag, &mut data);
        // `verify_truncated_left` compares the first 16 bytes in constant time.
        self.siv_mac(kind, &data).verify_truncated_left(&tag).ok()?;
        let end = data.iter().rposition(|&b| b != 0)?;
        if data[end] != 0x80 {
            return None;
        }
        data.truncate(end);
        Some(data)
    }

    /// The token of a link mailed from the preferences page (`Purpose`):
    /// `base64url(kind ‖ tag ‖ ChaCha20(expiry ‖ address padded))`, the same SIV
    /// construction as an unsubscribe token with its own first byte, so no kind is ever
    /// taken for another, and the instant it stops working (Unix seconds) sealed inside.
    /// It needs no ledger row; it works once because what it does cannot be done twice
    /// (the page checks the address still needs it).
    pub fn timed_token(&self, purpose: Purpose, address: &str, expires: i64) -> String {
        let mut payload = expires.to_be_bytes().to_vec();
        payload.extend_from_slice(address.trim().to_lowercase().as_bytes());
        self.seal(purpose.byte(), &payload)
    }

    /// The address a genuine token of `purpose` names and the instant it expires (Unix
    /// seconds).
    pub fn verify_timed(&self, purpose: Purpose, token: &str) -> Option<(String, i64)> {
        let data = self.open(purpose.byte(), token)?;
        if data.len() < 8 {
            return None;
        }
        let (expires, address) = data.split_at(8);
        let expires = i64::from_be_bytes(expires.try_into().ok()?);
        let address = String::from_utf8(address.to_vec()).ok()?;
        Some((address, expires))
    }

    /// ChaCha20 over `data` in place, its nonce taken from the tag.
    fn apply_cipher(&self, tag: &[u8; TAG_BYTES], data: &mut [u8]) {
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&tag[..12]);
        ChaCha20::new(&self.cipher.into(), &nonce.into()).apply_keystream(data);
    }

    /// The token that unsubscribes `address` (format 2: it does not show the address).
    pub fn token(&self, address: &str) -> String {
        self.seal(FORMAT, address.trim().to_lowercase().as_bytes())
    }

    /// The format-1 token of `address`, `base64url(address).mac`: made by nothing but
    /// tests, which prove the links of mails sent before format 2 still work.
    pub fn legacy_token(&self, address: &str) -> String {
        let address = address.trim().to_lowercase();
        let tag = self.legacy_mac(&address).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(address.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The address a token unsubscribes, if the token is genuine: format 2, or format 1
    /// (links already sent).
    pub fn verify(&self, token: &str) -> Option<String> {
        let token = token.trim();
        if token.contains('.') {
            self.verify_legacy(token)
        } else {
            self.verify_opaque(token)
        }
    }

    fn verify_opaque(&self, token: &str) -> Option<String> {
        let address = String::from_utf8(self.open(FORMAT, token)?).ok()?;
        (address == address.trim().to_lowercase()).then_some(address)
    }

    fn verify_legacy(&self, token: &str) -> Option<String> {
        let (address, tag) = token.split_once('.')?;
        let address = String::from_utf8(URL_SAFE_NO_PAD.decode(address).ok()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if address != address.to_lowercase() {
            return None;
        }
        // `verify_slice` compares in constant time and refuses truncated tags.
        self.legacy_mac(&address).verify_slice(&tag).ok()?;
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
    Ok(TokenKey::from_bytes(bytes))
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
            Ok(TokenKey::from_bytes(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> TokenKey {
        TokenKey::from_bytes([n; KEY_BYTES])
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
        let bo = k.token("bo@example.org");
        let spliced = format!("{}{}", &t[..23], &bo[23..]);
        assert_eq!(k.verify(&spliced), None, "anna's tag, bo's ciphertext");
        assert_eq!(k.verify(""), None);
        assert_eq!(k.verify("."), None);
        assert_eq!(k.verify("Ag"), None, "a format byte alone");
        assert_eq!(
            k.verify("YW5uYUBleGFtcGxlLm9yZw"),
            None,
            "an address, no tag"
        );
    }

    #[test]
    fn a_token_is_the_same_every_time_and_hides_its_address() {
        let k = key(1);
        let t = k.token("anna.lind@example.org");
        assert_eq!(
            t,
            k.token(" Anna.Lind@Example.ORG "),
            "deterministic, canonical"
        );
        assert!(
            !t.contains('.'),
            "format 2 is told from format 1 by having no dot"
        );
        let bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(bytes.len(), 1 + TAG_BYTES + PAD, "padded to 32 bytes");
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(!text.contains("anna") && !text.contains("example"));
        // Two addresses of different lengths under 31 bytes give tokens of one length.
        assert_eq!(k.token("a@example.org").len(), t.len());
    }

    #[test]
    fn a_format_1_token_is_still_accepted_and_never_made() {
        let k = key(1);
        let old = k.legacy_token("Anna@Example.org");
        assert!(old.starts_with("YW5uYUBleGFtcGxlLm9yZw."), "{old}");
        assert_eq!(k.verify(&old).as_deref(), Some("anna@example.org"));
        assert_ne!(k.token("anna@example.org"), old);
        let (_, tag) = old.split_once('.').unwrap();
        let other = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("bo@example.org"));
        assert_eq!(k.verify(&other), None, "another address with this tag");
        assert_eq!(key(2).verify(&old), None);
    }

    #[test]
    fn an_erased_address_hashes_the_same_in_any_case_and_only_under_its_key() {
        let h = key(1).erasure_key().hash("Anna.Lind@Example.org");
        assert_eq!(h, key(1).erasure_key().hash(" anna.lind@example.ORG "));
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(h, key(2).erasure_key().hash("anna.lind@example.org"));
        assert_ne!(h, key(1).erasure_key().hash("bo@example.org"));
    }

    #[test]
    fn an_erase_token_names_its_address_and_expiry_and_is_no_unsubscribe_token() {
        let k = key(1);
        let t = k.timed_token(Purpose::Erase, "Anna@Example.org", 1_800_000_000);
        assert_eq!(
            k.verify_timed(Purpose::Erase, &t),
            Some(("anna@example.org".to_string(), 1_800_000_000))
        );
        assert_eq!(k.verify(&t), None, "not an unsubscribe token");
        assert_eq!(k.verify_timed(Purpose::Resubscribe, &t), None);
        assert_eq!(
            k.verify_timed(Purpose::Erase, &k.token("anna@example.org")),
            None
        );
        assert_eq!(key(2).verify_timed(Purpose::Erase, &t), None);
        assert_eq!(k.verify_timed(Purpose::Erase, &t[..t.len() - 2]), None);
        let text = String::from_utf8_lossy(&URL_SAFE_NO_PAD.decode(&t).unwrap()).to_lowercase();
        assert!(!text.contains("anna"));
    }

    #[test]
    fn the_key_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = TokenKey::load_or_create(dir.path(), None).unwrap();
        let b = TokenKey::load_or_create(dir.path(), None).unwrap();
        assert_eq!(a.secret, b.secret);
        let mode = std::fs::metadata(dir.path().join(KEY_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join(KEY_NAME), [7u8; 32]).unwrap();
        let c = TokenKey::load_or_create(dir.path(), Some(creds.path())).unwrap();
        assert_eq!(c.secret, [7u8; 32], "systemd's credential wins");
    }
}
