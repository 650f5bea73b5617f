//! `pressroom subscribers list|export|erase`: the journalists who subscribed themselves,
//! and anyone's data as the ledger holds it (SPEC §6: a journalist can export and erase
//! what is held about them). `erase` leaves only the keyed hash of the address, which
//! keeps it opted out: no later `send`, fill or media sync mails it (`ledger::erasure`).

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use super::{Outcome, say};
use crate::clock;
use crate::config::Config;
use crate::ledger::Ledger;

#[derive(Subcommand, Debug)]
pub enum Action {
    /// The confirmed subscribers, their choices and whether they paused; the sign-ups
    /// waiting for confirmation are counted.
    List {
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Everything held about an address, as JSON on stdout: their subscription, waiting
    /// sign-ups, media-list rows, opt-out and its log, every mail sent to them.
    Export {
        /// The address (case does not matter).
        email: String,
    },
    /// Deletes everything held about an address, in one transaction, keeping only a keyed
    /// hash of it so that it stays opted out: nothing is ever mailed to it again, even
    /// while media.csv still lists it (take it off: `check` and the sync warn).
    Erase {
        /// The address (case does not matter).
        email: String,
    },
}

/// The address as a key (lower-cased), refused if it is not one.
fn address(email: &str) -> anyhow::Result<String> {
    let parsed: lettre::Address = email
        .trim()
        .parse()
        .with_context(|| format!("`{email}` is not an email address"))?;
    Ok(parsed.to_string().to_lowercase())
}

/// Subscribers read per query.
const PAGE: usize = 1_000;

pub fn run(config: &Config, action: &Action) -> anyhow::Result<Outcome> {
    match action {
        Action::List { json } => list(config, *json),
        Action::Export { email } => {
            let address = address(email)?;
            let ledger = Ledger::open_in(&config.paths.state)?;
            let export = ledger.export(&address)?;
            say!("{}", serde_json::to_string_pretty(&Value::Object(export))?);
            Ok(Outcome::Ok)
        }
        Action::Erase { email } => {
            let address = address(email)?;
            let mut ledger = Ledger::open_in(&config.paths.state)?;
            let rows = ledger.erase(&address, clock::now())?;
            say!(
                "erased {address}: {rows} rows deleted; only a keyed hash is kept, so nothing is mailed to it again"
            );
            Ok(Outcome::Ok)
        }
    }
}

fn list(config: &Config, as_json: bool) -> anyhow::Result<Outcome> {
    let ledger = Ledger::open_in(&config.paths.state)?;
    let waiting = ledger.signups_waiting()?;
    let mut after = String::new();
    let mut rows = Vec::new();
    loop {
        let page = ledger.subscribers(&after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.address.clone();
        let done = page.len() < PAGE;
        rows.extend(page);
        if done {
            break;
        }
    }
    if as_json {
        let subscribers: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "email": r.email,
                    "name": r.name,
                    "outlet": r.outlet,
                    "topics": split(&r.choices.topics),
                    "langs": split(&r.choices.langs),
                    "delivery": r.choices.delivery,
                    "paused": r.paused,
                    "confirmed_at": r.confirmed_at.to_rfc3339(),
                    "updated_at": r.updated_at.to_rfc3339(),
                })
            })
            .collect();
        let doc = json!({ "subscribers": subscribers, "signups_waiting": waiting });
        say!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Outcome::Ok);
    }
    for r in &rows {
        let or_all = |s: &str, all: &str| {
            if s.is_empty() {
                all.to_string()
            } else {
                s.replace('|', ", ")
            }
        };
        say!(
            "{}\t{}\t{}\t{}\t{}\t{}{}",
            r.email,
            r.name,
            r.outlet,
            or_all(&r.choices.topics, "every topic"),
            or_all(&r.choices.langs, "every language"),
            r.choices.delivery,
            if r.paused { "\tpaused" } else { "" }
        );
    }
    say!(
        "{} subscribers; {waiting} sign-ups waiting for confirmation",
        rows.len()
    );
    Ok(Outcome::Ok)
}

fn split(s: &str) -> Vec<&str> {
    s.split('|').filter(|p| !p.is_empty()).collect()
}
