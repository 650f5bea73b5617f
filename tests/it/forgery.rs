//! Unsubscribe forgery: tokens made up, cut short, re-encoded, changed by one character,
//! made with another key or for another address, spliced from two genuine ones; in the
//! opaque format mail carries and in the old one (`base64url(address).mac`) still
//! accepted. None may opt out anyone but the address its genuine token names.

use pressroom::optout::TokenKey;
use proptest::prelude::*;

fn key(bytes: [u8; 32]) -> TokenKey {
    TokenKey::from_bytes(bytes)
}

fn address() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9.]{0,15}@example\\.(org|com)"
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides it for the long run.
        cases: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_genuine_token_names_its_address_and_nothing_else(
        secret in any::<[u8; 32]>(), a in address(), b in address(),
    ) {
        let k = key(secret);
        prop_assert_eq!(k.verify(&k.token(&a)), Some(a.clone()));
        if a != b {
            prop_assert_eq!(k.verify(&k.token(&b)), Some(b.clone()));
        }
    }

    #[test]
    fn made_up_tokens_are_refused(secret in any::<[u8; 32]>(), s in "\\PC{0,120}") {
        prop_assert_eq!(key(secret).verify(&s), None);
    }

    #[test]
    fn another_keys_token_is_refused(
        secret in any::<[u8; 32]>(), other in any::<[u8; 32]>(), a in address(),
    ) {
        prop_assume!(secret != other);
        prop_assert_eq!(key(secret).verify(&key(other).token(&a)), None);
    }

    #[test]
    fn a_cut_or_changed_token_is_refused_or_names_the_same_address(
        secret in any::<[u8; 32]>(), a in address(), at in any::<prop::sample::Index>(),
        with in "[A-Za-z0-9_.=%+/-]",
    ) {
        let k = key(secret);
        let token = k.token(&a);
        let i = at.index(token.len());
        // Cut short anywhere.
        prop_assert_eq!(k.verify(&token[..i]), None, "prefix {}", &token[..i]);
        // One character changed.
        let mut changed = token.clone();
        changed.replace_range(i..i + 1, &with);
        if changed != token {
            let got = k.verify(&changed);
            prop_assert!(got.is_none() || got == Some(a.clone()), "{} → {:?}", changed, got);
        }
        // Re-encoded: padded, percent-encoded, upper-cased.
        for variant in [
            format!("{token}="),
            token.replace('-', "%2D").replace('_', "%5F"),
            token.to_uppercase(),
        ] {
            if variant != token {
                let got = k.verify(&variant);
                prop_assert!(got.is_none() || got == Some(a.clone()), "{} → {:?}", variant, got);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn two_genuine_tokens_spliced_name_nobody(
        secret in any::<[u8; 32]>(), a in address(), b in address(),
        at in any::<prop::sample::Index>(),
    ) {
        prop_assume!(a != b);
        let k = key(secret);
        let (ta, tb) = (k.token(&a), k.token(&b));
        // Same length (both under 31 bytes): a's head (format, some of the tag) on b's tail;
        // where the tails happen to agree, it is one of the two genuine tokens.
        prop_assert_eq!(ta.len(), tb.len());
        let i = at.index(ta.len());
        let spliced = format!("{}{}", &ta[..i], &tb[i..]);
        let got = k.verify(&spliced);
        prop_assert!(
            got.is_none()
                || (spliced == ta && got == Some(a.clone()))
                || (spliced == tb && got == Some(b.clone())),
            "{} → {:?}", spliced, got
        );
    }

    #[test]
    fn an_old_format_token_names_its_own_address_only(
        secret in any::<[u8; 32]>(), other in any::<[u8; 32]>(), a in address(), b in address(),
    ) {
        let k = key(secret);
        let old = k.legacy_token(&a);
        prop_assert_eq!(k.verify(&old), Some(a.clone()));
        prop_assume!(secret != other);
        prop_assert_eq!(key(other).verify(&old), None);
        if a != b {
            let (_, mac) = old.split_once('.').expect("a dot");
            let moved = format!("{}.{mac}", base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD, &b));
            prop_assert_eq!(k.verify(&moved), None);
        }
    }
}

#[test]
fn a_replayed_link_after_resubscribing_touches_only_its_own_address() {
    use pressroom::ledger::{Ledger, OptOutSource};
    let dir = tempfile::tempdir().expect("dir");
    let mut ledger = Ledger::open_in(dir.path()).expect("ledger");
    let k = key([7; 32]);
    let t = |s: &str| s.parse().expect("instant");
    let anna = "anna.lind@example.org";
    let token = k.token(anna);
    let who = k.verify(&token).expect("genuine");
    assert!(
        ledger
            .unsubscribe(&who, OptOutSource::OneClick, t("2026-01-01T10:00:00Z"))
            .expect("unsubscribe")
    );
    assert!(
        ledger
            .resubscribe(anna, OptOutSource::Command, t("2026-01-02T10:00:00Z"))
            .expect("resubscribe")
    );
    // The old link, clicked again: it can only ever name anna.
    let who = k.verify(&token).expect("still genuine");
    assert_eq!(who, anna);
    ledger
        .unsubscribe(&who, OptOutSource::OneClick, t("2026-01-03T10:00:00Z"))
        .expect("unsubscribe");
    assert!(ledger.is_opted_out(anna).expect("read"));
    assert!(!ledger.is_opted_out("bo.ek@example.com").expect("read"));
    assert_eq!(ledger.opted_out().expect("read").addresses().len(), 1);
}
