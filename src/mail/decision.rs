//! Deciding a dispatch when a release is published: one delivery per targeted recipient
//! (topics intersect or they take everything; language matches if they set one; opt-outs
//! are left out by the ledger as it commits), unless the release says `mail = false` or was
//! first seen more than `catch_up` after its date. Pure: the ledger records the decision
//! with the sighting, once (`Ledger::commit_build`).

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::ledger::{MailDecision, Publication};
use crate::mail::policy::{self, AutoDispatch};
use crate::media::MediaList;
use crate::release::Release;

/// The publication of `release`, first seen public at `first_seen`, and its mail.
pub fn decide(
    config: &Config,
    media: &MediaList,
    release: &Release,
    first_seen: DateTime<Utc>,
) -> Publication {
    let mail = if !release.mail {
        None
    } else if policy::auto_dispatch(release.date, first_seen, config.dispatch.catch_up)
        == AutoDispatch::TooLate
    {
        Some(MailDecision::TooLate)
    } else {
        let domain = config.mail.from.email.domain();
        Some(MailDecision::Queue(
            media
                .targets(release)
                .map(|r| {
                    let a = r.key();
                    let id = super::message_id(&release.id, &a, 1, domain);
                    (a, id)
                })
                .collect(),
        ))
    };
    Publication {
        release_id: release.id.clone(),
        content_hash: release.content_hash.clone(),
        first_seen,
        mail,
    }
}
