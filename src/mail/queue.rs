//! Deciding a dispatch when a release is published: queue one delivery per targeted
//! recipient (topics intersect or they take everything; language matches if they set one;
//! minus opt-outs), unless the release says `mail = false` or was first seen more than
//! `catch_up` after its date. The decision is recorded once, so it is never made twice.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::dispatch::{self, AutoDispatch};
use crate::ledger::{Decided, Ledger, LedgerError};
use crate::media::MediaList;
use crate::release::Release;

/// What publication decided for the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deliveries queued; they leave inside the dispatch window.
    Queued(usize),
    /// `mail = false`.
    NotMailed,
    /// First seen too late to mail by itself; `pressroom send` still can.
    TooLate,
    /// Decided before (by an earlier build or a manual send).
    AlreadyDecided,
}

pub fn on_publication(
    ledger: &mut Ledger,
    config: &Config,
    media: &MediaList,
    release: &Release,
    first_seen: DateTime<Utc>,
) -> Result<Decision, LedgerError> {
    if ledger.latest_dispatch(&release.id)?.is_some() {
        return Ok(Decision::AlreadyDecided);
    }
    if !release.mail {
        return Ok(Decision::NotMailed);
    }
    if dispatch::auto_dispatch(release.date, first_seen, config.dispatch.catch_up)
        == AutoDispatch::TooLate
    {
        ledger.create_dispatch(&release.id, 1, "late", &release.content_hash, first_seen)?;
        return Ok(Decision::TooLate);
    }
    let opted_out = ledger.opted_out()?;
    let domain = config.mail.from.email.domain().to_string();
    let who = media
        .targets(release)
        .map(|r| r.key())
        .filter(|a| !opted_out.contains(a))
        .map(|a| {
            let id = super::message_id(&release.id, &a, 1, &domain);
            (a, id)
        });
    let decided = Decided {
        kind: "auto",
        content_hash: &release.content_hash,
    };
    Ok(Decision::Queued(ledger.queue(
        &release.id,
        1,
        Some(decided),
        who,
        first_seen,
    )?))
}
