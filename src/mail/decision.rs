//! Deciding a dispatch when a release is published: one delivery per targeted recipient
//! of the audience (topics intersect or they take everything; language matches if they
//! set one; opt-outs are left out by the ledger as it writes them), unless the release says
//! `mail = false` or was first seen more than `catch_up` after its date. Pure: the ledger
//! records the decision with the sighting, once (`Ledger::commit_build`), and its
//! deliveries are filled from the audience a batch at a time (`targets` decides who of a
//! batch; `publish::fill` walks the batches).

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::ledger::{AudienceRow, MailDecision, Publication};
use crate::mail::policy::{self, AutoDispatch};
use crate::media::Recipient;
use crate::release::Release;

/// The publication of `release`, first seen public at `first_seen`, and its mail.
pub fn decide(config: &Config, release: &Release, first_seen: DateTime<Utc>) -> Publication {
    let mail = if !release.mail {
        None
    } else if policy::auto_dispatch(release.date, first_seen, config.dispatch.catch_up)
        == AutoDispatch::TooLate
    {
        Some(MailDecision::TooLate)
    } else {
        Some(MailDecision::Audience)
    };
    Publication {
        release_id: release.id.clone(),
        content_hash: release.content_hash.clone(),
        first_seen,
        mail,
    }
}

/// Who of these rows of the audience `release` is for (`Recipient::wants`, the one rule),
/// each with the Message-ID of version 1: (address, Message-ID).
pub fn targets(config: &Config, release: &Release, rows: &[AudienceRow]) -> Vec<(String, String)> {
    let domain = config.mail.from.email.domain();
    rows.iter()
        .filter_map(Recipient::from_row)
        .filter(|r| r.wants(release))
        .map(|r| {
            let a = r.key();
            let id = super::message_id(&release.id, &a, 1, domain);
            (a, id)
        })
        .collect()
}
