//! Mail: one personal message per (release, recipient). `compose` builds it with lettre's
//! message builder from the built-in (or overridden) `mail.txt` and `mail.html` templates.

pub mod compose;
pub mod decision;
pub mod digest;
pub mod dkim;
mod inline;
pub mod notice;
pub mod outbox;
pub mod pipeline;
pub mod policy;
pub mod rate;
pub mod sender;
pub mod session;
pub mod transport;

use std::path::Path;

pub use compose::{
    Composed, Kind, Letter, Prepared, Transfer, compose, message_id, test_message_id,
};

use crate::config::{Config, ConfigInvalid, Transport};
use crate::diagnostic::Diagnostic;

/// Reads the files the config names for mail (the DKIM key, the CA certificates) as mail's
/// set-up reads them, so a bad one is a config error, reported at the line that names it,
/// before anything runs. The config holds their paths only.
pub fn check(config: &Config) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    if let Some(dkim) = &config.mail.dkim {
        let domain = config.mail.from.email.domain();
        if let Err(e) = dkim::Signer::load(dkim, domain) {
            problems.push(dkim.key.written_at.error(e.to_string()).expected(
                "an unencrypted RSA (2048 bits) or Ed25519 private key in PEM, e.g. from `openssl genpkey -algorithm ed25519`",
            ));
        }
    }
    if let Transport::Smtp {
        tls_ca: Some(ca), ..
    } = &config.mail.transport
        && let Err(e) = transport::read_ca(&ca.path)
    {
        problems.push(
            ca.written_at
                .error(e.to_string())
                .expected("one or more PEM certificates (BEGIN CERTIFICATE)"),
        );
    }
    problems
}

/// [`Config::load`], then [`check`]: the config every command and a reload start from, so a
/// DKIM key or CA file that cannot be used makes the config invalid ([`ConfigInvalid`]).
pub fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, Vec<Diagnostic>)> {
    let (config, warnings) = Config::load(path)?;
    let problems = check(&config);
    if problems.is_empty() {
        Ok((config, warnings))
    } else {
        Err(ConfigInvalid(problems).into())
    }
}
