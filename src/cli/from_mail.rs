//! `pressroom unsubscribe --from-mail`: one mail to `[subscribe] unsubscribe_mailbox`, as
//! an MTA pipes it (a Postfix alias `| pressroom unsubscribe --from-mail`), whose Subject
//! carries the token of a mail's `mailto:` unsubscribe (`unsubscribe TOKEN`), records that
//! address's opt-out (source `mail`).
//!
//! Exit codes are for the MTA. A mail without a genuine token (spam, a reply, a token cut
//! by a mail client) exits 0 with a line on stderr saying it was ignored: a non-zero code
//! would have the MTA bounce it to its sender, who is often forged (backscatter), and the
//! message can do nothing on a second try either. An opt-out that cannot be written (the
//! ledger locked or unreadable, no key) exits 75, EX_TEMPFAIL: the MTA keeps the mail and
//! tries again, so an unsubscribe is never lost.

use std::io::Read;

use super::Outcome;
use crate::clock;
use crate::config::{Config, credentials_dir};
use crate::ledger::{Ledger, OptOutSource};
use crate::optout::TokenKey;

/// The most of a mail that is kept: the Subject is in the header, which comes first; the
/// rest is read and dropped, so the MTA's pipe is never cut short.
const KEEP: u64 = 1024 * 1024;

pub fn unsubscribe(config: &Config) -> Outcome {
    let mut mail = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let read = (&mut stdin)
        .take(KEEP)
        .read_to_end(&mut mail)
        .and_then(|_| std::io::copy(&mut stdin, &mut std::io::sink()));
    if let Err(e) = read {
        eprintln!("pressroom: cannot read the mail on stdin: {e}");
        return Outcome::TryAgain;
    }
    let key = match TokenKey::load_or_create(&config.paths.state, credentials_dir().as_deref()) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("pressroom: {e}");
            return Outcome::TryAgain;
        }
    };
    let Some(address) = subject(&mail).and_then(|s| token_address(&key, &s)) else {
        eprintln!("ignored: the mail carries no genuine unsubscribe token in its Subject");
        return Outcome::Ok;
    };
    let recorded = Ledger::open_in(&config.paths.state)
        .and_then(|mut ledger| ledger.unsubscribe(&address, OptOutSource::Mail, clock::now()));
    match recorded {
        Ok(true) => {
            println!("unsubscribed by mail: nothing more will be mailed to {address}");
            Outcome::Ok
        }
        Ok(false) => {
            println!("already unsubscribed: {address}");
            Outcome::Ok
        }
        Err(e) => {
            eprintln!("pressroom: cannot record the opt-out of {address}: {e:#}");
            Outcome::TryAgain
        }
    }
}

/// The mail's Subject, its RFC 2047 encoded words decoded.
fn subject(mail: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(mail)?;
    message.subject().map(str::to_string)
}

/// The address the first genuine token among the Subject's words names. Clients write the
/// `mailto:` link's subject as it is (`unsubscribe TOKEN`), some with `Re:` or brackets
/// around it; any word that verifies will do, since only this installation's key makes one.
fn token_address(key: &TokenKey, subject: &str) -> Option<String> {
    subject
        .split(|c: char| c.is_whitespace() || "<>()[]\"',;:".contains(c))
        .filter(|word| word.len() >= 16)
        .find_map(|word| key.verify(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_a_subject_as_clients_write_it() {
        let key = TokenKey::from_bytes([3; 32]);
        let token = key.token("anna.lind@example.org");
        for subject in [
            format!("unsubscribe {token}"),
            format!("Unsubscribe  {token}\r\n"),
            format!("Re: unsubscribe <{token}>"),
        ] {
            let mail = format!(
                "From: a@example.com\r\nTo: unsubscribe@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n"
            );
            assert_eq!(
                subject_address(&key, mail.as_bytes()).as_deref(),
                Some("anna.lind@example.org"),
                "{subject}"
            );
        }
        // RFC 2047: a client that encodes the whole Subject.
        let encoded = format!(
            "Subject: =?utf-8?B?{}?=\r\n\r\n",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("unsubscribe {token}")
            )
        );
        assert_eq!(
            subject_address(&key, encoded.as_bytes()).as_deref(),
            Some("anna.lind@example.org")
        );
        let junk = "Subject: unsubscribe me please\r\n\r\nunsubscribe\r\n";
        assert_eq!(subject_address(&key, junk.as_bytes()), None);
        assert_eq!(subject_address(&key, b"\xff\xfe not a mail"), None);
    }

    fn subject_address(key: &TokenKey, mail: &[u8]) -> Option<String> {
        subject(mail).and_then(|s| token_address(key, &s))
    }
}
