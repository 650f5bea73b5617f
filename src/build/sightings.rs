//! What a build sees of published releases, set against what the ledger remembers of
//! them: publications (seen public for the first time), corrections (a public release
//! whose content changed gets an `updated` instant), the notices kept for withdrawal
//! pages, and the releases whose files are gone. Pure: what is to be recorded is handed
//! back in `Seen`, and `publish::record` commits it through the ledger's owner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::ledger::{History, Notice, Seen};
use crate::planner::{self, Visibility};
use crate::release::revision::{self, Revision};
use crate::release::{self, Release};

use super::Recording;

/// What the ledger remembers of published releases, read once when the builder starts and
/// kept in step with every commit of what a build saw (`recorded`).
pub(super) struct Revisions {
    pub recording: Recording,
    known: HashMap<String, Revision>,
    notices: HashMap<String, Notice>,
    /// Every slug each release was seen public at.
    slugs: HashMap<String, Vec<String>>,
    /// The latest build instant the ledger recorded.
    pub latest: Option<DateTime<Utc>>,
}

/// What a build saw of the public releases: for the ledger, once the site is written.
#[derive(Default)]
pub(super) struct Observed {
    /// Seen public for the first time: publications.
    pub first_seen: Vec<Arc<Release>>,
    pub seen: Seen,
}

impl Observed {
    /// Leaves out releases this build refused (a renderer panicked on them).
    pub fn forget(&mut self, ids: &HashSet<&str>) {
        self.first_seen.retain(|r| !ids.contains(r.id.as_str()));
        self.seen
            .revisions
            .retain(|(id, _)| !ids.contains(id.as_str()));
        self.seen
            .notices
            .retain(|(id, _)| !ids.contains(id.as_str()));
        self.seen.slugs.retain(|(id, _)| !ids.contains(id.as_str()));
    }
}

impl Revisions {
    pub fn new(history: History, recording: Recording) -> Revisions {
        Revisions {
            recording,
            known: history.revisions,
            notices: history.notices,
            slugs: history.slugs,
            latest: history.latest,
        }
    }

    /// What a build as of `at` saw is now in the ledger.
    pub fn recorded(&mut self, seen: Seen, at: DateTime<Utc>) {
        self.known.extend(seen.revisions);
        self.notices.extend(seen.notices);
        for (id, slug) in seen.slugs {
            let slugs = self.slugs.entry(id).or_default();
            if !slugs.contains(&slug) {
                slugs.push(slug);
            }
        }
        self.latest = Some(self.latest.map_or(at, |l| l.max(at)));
    }

    /// The old addresses of public releases whose slug changed: (old page folder, the
    /// release now there). Only a slug the release was seen public at, only while it is
    /// public, and never a slug a page of the site holds at that instant.
    pub fn moved<'a>(
        &self,
        public: &[&'a Release],
        shown: &HashSet<&str>,
    ) -> Vec<(String, &'a Release)> {
        let mut moved = Vec::new();
        for r in public {
            for old in self.slugs.get(&r.id).into_iter().flatten() {
                if old != r.slug.as_str() && !shown.contains(old.as_str()) {
                    moved.push((format!("releases/{old}/"), *r));
                }
            }
        }
        moved.sort_by(|a, b| a.0.cmp(&b.0));
        moved.dedup_by(|a, b| a.0 == b.0);
        moved
    }

    /// Whether the release with this id was ever seen public.
    pub fn was_public(&self, id: &str) -> bool {
        self.known.contains_key(id)
    }

    /// Sets `updated` on releases corrected after publication, and says what the ledger
    /// is to record once the site is written.
    pub fn observe(&self, releases: &mut [Arc<Release>], at: DateTime<Utc>) -> Observed {
        let mut changed = Vec::new();
        let mut first_seen = Vec::new();
        let mut notices = Vec::new();
        let mut slugs = Vec::new();
        for r in releases.iter_mut() {
            let visibility = planner::visibility(r, at);
            // A record means "was public": one withdrawn before anyone saw it public gets
            // none (and so no withdrawal notice, see `Builder::build`).
            let published = match visibility {
                Visibility::Public => true,
                Visibility::Withdrawn { .. } => self.was_public(&r.id),
                _ => false,
            };
            if !published {
                continue;
            }
            let notice = Notice {
                slug: r.slug.to_string(),
                title: r.title.clone(),
                date: r.date,
                lang: r.lang.to_string(),
            };
            if self.notices.get(&r.id) != Some(&notice) {
                notices.push((r.id.clone(), notice));
            }
            if visibility == Visibility::Public
                && !self
                    .slugs
                    .get(&r.id)
                    .is_some_and(|s| s.iter().any(|s| s == r.slug.as_str()))
            {
                slugs.push((r.id.clone(), r.slug.to_string()));
            }
            let record = self.known.get(&r.id);
            if record.is_none() && visibility == Visibility::Public {
                first_seen.push(Arc::clone(r));
            }
            let (next, shown) = revision::observe(record, &r.content_hash, at);
            if record != Some(&next) {
                changed.push((r.id.clone(), next));
            }
            let updated = r.updated.max(shown);
            if updated != r.updated {
                Arc::make_mut(r).set_updated(updated);
            }
        }
        Observed {
            first_seen,
            seen: Seen {
                revisions: changed,
                notices,
                pins: Vec::new(),
                slugs,
            },
        }
    }

    /// Releases published by `at` whose files are gone: each still has a page at its URL,
    /// saying it was withdrawn (SPEC §4), made from what the ledger remembers of it. None
    /// takes the slug of a release that is there.
    pub fn deleted(
        &self,
        present: &[Arc<Release>],
        config: &Config,
        at: DateTime<Utc>,
    ) -> Vec<Arc<Release>> {
        let ids: HashSet<&str> = present.iter().map(|r| r.id.as_str()).collect();
        let slugs: HashSet<&str> = present.iter().map(|r| r.slug.as_str()).collect();
        let mut gone = Vec::new();
        for (id, notice) in &self.notices {
            let Some(revision) = self.known.get(id) else {
                continue;
            };
            if ids.contains(id.as_str())
                || slugs.contains(notice.slug.as_str())
                || notice.date > at
                || revision.first_seen > at
            {
                continue;
            }
            if let Some(r) = release::deleted(id, notice, &revision.hash, config) {
                gone.push(Arc::new(r));
            }
        }
        gone
    }
}
