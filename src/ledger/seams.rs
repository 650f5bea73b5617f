//! The ledger as each of its consumers sees it: the builder's sightings, the mail
//! sender's deliveries, and opt-outs. SQLite's `Ledger` implements each directly (one
//! process, one connection: the command line) and so does the daemon's `Handle` (every
//! call a request to the owner thread); a second backend would be a third implementation.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{
    Delivery, Due, Handle, Ledger, LedgerError, OptOutSource, Outcome, Publication, Recorded, Seen,
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
    fn opted_out(&mut self) -> Result<HashSet<String>, LedgerError>;
}

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
    fn opted_out(&mut self) -> Result<HashSet<String>, LedgerError> {
        Ledger::opted_out(self)
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
    fn opted_out(&mut self) -> Result<HashSet<String>, LedgerError> {
        self.call(|l| l.opted_out())
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
