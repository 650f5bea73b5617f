//! The ledger as each of its consumers sees it: the builder's sightings, the mail
//! sender's deliveries, and opt-outs. SQLite's `Ledger` implements each directly (one
//! process, one connection: the command line) and so does the daemon's `Handle` (every
//! call a request to the owner thread); a second backend would be a third implementation.

use chrono::{DateTime, Utc};

use super::{
    AudienceRow, Delivery, Due, Filling, Handle, Ledger, LedgerError, OptOutSource, OptedOut,
    Outcome, Publication, Recorded, Seen, Skipped, SourceState,
};

/// What a build saw, with its publications' mail, in one commit.
pub trait Sightings {
    fn commit_build(
        &mut self,
        seen: Seen,
        publications: Vec<Publication>,
        withdrawn: Vec<String>,
        at: DateTime<Utc>,
    ) -> Result<(Vec<Recorded>, Vec<usize>), LedgerError>;
}

/// What a mail run needs: claims (the `sending` intent), outcomes, put-backs, and the
/// opt-outs as of each claim.
pub trait Deliveries: Send {
    fn claim(
        &mut self,
        release_id: &str,
        version: u32,
        due: Due,
        only: Option<&str>,
        limit: usize,
        at: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, LedgerError>;
    fn record(
        &mut self,
        outcomes: &[(Delivery, Outcome)],
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError>;
    fn unclaim(&mut self, claimed: &[Delivery], at: DateTime<Utc>) -> Result<(), LedgerError>;
    fn opted_out(&mut self) -> Result<OptedOut, LedgerError>;
    /// The current rows of the media list for these addresses: the hand-off check of a
    /// claimed batch reads who is listed from here, not from a parse of the whole file.
    fn listed(
        &mut self,
        addresses: &[String],
    ) -> Result<std::collections::HashMap<String, AudienceRow>, LedgerError>;
}

/// The audience (`ledger::audience`): a source written a generation at a time, batch by
/// batch; a dispatch's deliveries filled from it batch by batch. Each call is one short
/// transaction, so in the daemon other requests to the owner go between two batches.
pub trait Audience {
    fn audience_state(&mut self, source: &str) -> Result<SourceState, LedgerError>;
    fn begin_audience(&mut self, source: &str) -> Result<i64, LedgerError>;
    fn write_audience(
        &mut self,
        source: &str,
        generation: i64,
        rows: Vec<AudienceRow>,
    ) -> Result<Vec<Skipped>, LedgerError>;
    fn switch_audience(
        &mut self,
        source: &str,
        generation: i64,
        stamp: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError>;
    fn audience_unreadable(&mut self, source: &str, why: &str) -> Result<(), LedgerError>;
    fn prune_audience(&mut self, source: &str, limit: usize) -> Result<usize, LedgerError>;
    /// A batch of the media list's `generation` merged with the subscribers' own
    /// choices, and whether the audience is through (`Ledger::audience_batch`).
    fn audience_batch(
        &mut self,
        generation: i64,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<AudienceRow>, bool), LedgerError>;
    fn filling(&mut self) -> Result<Vec<Filling>, LedgerError>;
    #[allow(clippy::too_many_arguments)]
    fn fill_batch(
        &mut self,
        release_id: &str,
        version: u32,
        generation: i64,
        after: &str,
        who: Vec<(String, String)>,
        next: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, LedgerError>;
}

/// What `publish::record` needs: the build's commit, then the audience its mail is
/// filled from.
pub trait Publishing: Sightings + Audience {}

impl<T: Sightings + Audience> Publishing for T {}

/// Who asked not to be mailed.
pub trait OptOuts {
    fn unsubscribe(
        &mut self,
        address: &str,
        source: OptOutSource,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError>;
    fn resubscribe(
        &mut self,
        address: &str,
        source: OptOutSource,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError>;
}

impl Sightings for Ledger {
    fn commit_build(
        &mut self,
        seen: Seen,
        publications: Vec<Publication>,
        withdrawn: Vec<String>,
        at: DateTime<Utc>,
    ) -> Result<(Vec<Recorded>, Vec<usize>), LedgerError> {
        Ledger::commit_build(self, &seen, &publications, &withdrawn, at)
    }
}

impl Deliveries for Ledger {
    fn claim(
        &mut self,
        release_id: &str,
        version: u32,
        due: Due,
        only: Option<&str>,
        limit: usize,
        at: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, LedgerError> {
        Ledger::claim(self, release_id, version, due, only, limit, at)
    }
    fn record(
        &mut self,
        outcomes: &[(Delivery, Outcome)],
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        Ledger::record(self, outcomes, at)
    }
    fn unclaim(&mut self, claimed: &[Delivery], at: DateTime<Utc>) -> Result<(), LedgerError> {
        Ledger::unclaim(self, claimed, at)
    }
    fn opted_out(&mut self) -> Result<OptedOut, LedgerError> {
        Ledger::opted_out(self)
    }
    fn listed(
        &mut self,
        addresses: &[String],
    ) -> Result<std::collections::HashMap<String, AudienceRow>, LedgerError> {
        Ledger::audience_listed(self, addresses)
    }
}

impl Audience for Ledger {
    fn audience_state(&mut self, source: &str) -> Result<SourceState, LedgerError> {
        Ledger::audience_state(self, source)
    }
    fn begin_audience(&mut self, source: &str) -> Result<i64, LedgerError> {
        Ledger::begin_audience(self, source)
    }
    fn write_audience(
        &mut self,
        source: &str,
        generation: i64,
        rows: Vec<AudienceRow>,
    ) -> Result<Vec<Skipped>, LedgerError> {
        Ledger::write_audience(self, source, generation, &rows)
    }
    fn switch_audience(
        &mut self,
        source: &str,
        generation: i64,
        stamp: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        Ledger::switch_audience(self, source, generation, stamp.as_deref(), at)
    }
    fn audience_unreadable(&mut self, source: &str, why: &str) -> Result<(), LedgerError> {
        Ledger::audience_unreadable(self, source, why)
    }
    fn prune_audience(&mut self, source: &str, limit: usize) -> Result<usize, LedgerError> {
        Ledger::prune_audience(self, source, limit)
    }
    fn audience_batch(
        &mut self,
        generation: i64,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<AudienceRow>, bool), LedgerError> {
        Ledger::audience_batch(self, generation, after, limit)
    }
    fn filling(&mut self) -> Result<Vec<Filling>, LedgerError> {
        Ledger::filling(self)
    }
    fn fill_batch(
        &mut self,
        release_id: &str,
        version: u32,
        generation: i64,
        after: &str,
        who: Vec<(String, String)>,
        next: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, LedgerError> {
        Ledger::fill_batch(
            self,
            release_id,
            version,
            generation,
            after,
            &who,
            next.as_deref(),
            at,
        )
    }
}

impl Audience for Handle {
    fn audience_state(&mut self, source: &str) -> Result<SourceState, LedgerError> {
        let source = source.to_string();
        self.call(move |l| l.audience_state(&source))
    }
    fn begin_audience(&mut self, source: &str) -> Result<i64, LedgerError> {
        let source = source.to_string();
        self.call(move |l| l.begin_audience(&source))
    }
    fn write_audience(
        &mut self,
        source: &str,
        generation: i64,
        rows: Vec<AudienceRow>,
    ) -> Result<Vec<Skipped>, LedgerError> {
        let source = source.to_string();
        self.call(move |l| l.write_audience(&source, generation, &rows))
    }
    fn switch_audience(
        &mut self,
        source: &str,
        generation: i64,
        stamp: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let source = source.to_string();
        self.call(move |l| l.switch_audience(&source, generation, stamp.as_deref(), at))
    }
    fn audience_unreadable(&mut self, source: &str, why: &str) -> Result<(), LedgerError> {
        let (source, why) = (source.to_string(), why.to_string());
        self.call(move |l| l.audience_unreadable(&source, &why))
    }
    fn prune_audience(&mut self, source: &str, limit: usize) -> Result<usize, LedgerError> {
        let source = source.to_string();
        self.call(move |l| l.prune_audience(&source, limit))
    }
    fn audience_batch(
        &mut self,
        generation: i64,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<AudienceRow>, bool), LedgerError> {
        let after = after.to_string();
        self.call(move |l| l.audience_batch(generation, &after, limit))
    }
    fn filling(&mut self) -> Result<Vec<Filling>, LedgerError> {
        self.call(|l| l.filling())
    }
    fn fill_batch(
        &mut self,
        release_id: &str,
        version: u32,
        generation: i64,
        after: &str,
        who: Vec<(String, String)>,
        next: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, LedgerError> {
        let (release_id, after) = (release_id.to_string(), after.to_string());
        self.call(move |l| {
            l.fill_batch(
                &release_id,
                version,
                generation,
                &after,
                &who,
                next.as_deref(),
                at,
            )
        })
    }
}

impl OptOuts for Ledger {
    fn unsubscribe(
        &mut self,
        address: &str,
        source: OptOutSource,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        Ledger::unsubscribe(self, address, source, at)
    }
    fn resubscribe(
        &mut self,
        address: &str,
        source: OptOutSource,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        Ledger::resubscribe(self, address, source, at)
    }
}

impl Sightings for Handle {
    fn commit_build(
        &mut self,
        seen: Seen,
        publications: Vec<Publication>,
        withdrawn: Vec<String>,
        at: DateTime<Utc>,
    ) -> Result<(Vec<Recorded>, Vec<usize>), LedgerError> {
        self.call(move |l| l.commit_build(&seen, &publications, &withdrawn, at))
    }
}

impl Deliveries for Handle {
    fn claim(
        &mut self,
        release_id: &str,
        version: u32,
        due: Due,
        only: Option<&str>,
        limit: usize,
        at: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, LedgerError> {
        let (release_id, only) = (release_id.to_string(), only.map(str::to_string));
        self.call(move |l| l.claim(&release_id, version, due, only.as_deref(), limit, at))
    }
    fn record(
        &mut self,
        outcomes: &[(Delivery, Outcome)],
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let outcomes = outcomes.to_vec();
        self.call(move |l| l.record(&outcomes, at))
    }
    fn unclaim(&mut self, claimed: &[Delivery], at: DateTime<Utc>) -> Result<(), LedgerError> {
        if claimed.is_empty() {
            return Ok(());
        }
        let claimed = claimed.to_vec();
        self.call(move |l| l.unclaim(&claimed, at))
    }
    fn opted_out(&mut self) -> Result<OptedOut, LedgerError> {
        self.call(|l| l.opted_out())
    }
    fn listed(
        &mut self,
        addresses: &[String],
    ) -> Result<std::collections::HashMap<String, AudienceRow>, LedgerError> {
        let addresses = addresses.to_vec();
        self.call(move |l| Ledger::audience_listed(l, &addresses))
    }
}

impl OptOuts for Handle {
    fn unsubscribe(
        &mut self,
        address: &str,
        source: OptOutSource,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let address = address.to_string();
        self.call(move |l| l.unsubscribe(&address, source, at))
    }
    fn resubscribe(
        &mut self,
        address: &str,
        source: OptOutSource,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let address = address.to_string();
        self.call(move |l| l.resubscribe(&address, source, at))
    }
}
