//! The unsubscribe token check, with any string: never panics, and only the genuine token
//! of an address (the opaque format, or the old one still accepted) names it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom::optout::TokenKey;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let key = TokenKey::from_bytes([0x5e; 32]);
    if let Some(address) = key.verify(token) {
        assert!(
            key.token(&address) == token.trim() || key.legacy_token(&address) == token.trim(),
            "a forged token was accepted"
        );
    }
});
