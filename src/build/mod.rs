//! The build: the catalog's releases + config + instant → files in the output folder.
//! `Builder` keeps what it rendered, so after one file changes only that release is
//! rendered again (the catalog parses only that file), and only the listings that show it;
//! the rest of the site is left as written. A release that fails to parse keeps its last
//! good version in a long-running builder, and its files on disk in any case, if it was on
//! the site when it broke; one that was not public yet is held (nothing of it is built, its
//! mail waits) until it is fixed. What the build saw of published releases (`sightings`)
//! is handed back for the ledger to record. A recorded build never runs on a clock set back
//! behind the latest instant the ledger recorded.

mod sightings;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};

use crate::catalog::{self, Catalog};
pub use crate::catalog::{Failing, Loaded};
use crate::config::Config;
use crate::core::Presence;
use crate::diagnostic::Diagnostic;
use crate::ledger::{History, Seen};
use crate::output::{self, Memo, Staged, Staging};
use crate::planner::{self, Plan, Visibility};
use crate::release::{self, Release};
use crate::render::{self, Map, Output, Templates};
use sightings::{Observed, Revisions};

/// How far a recorded build's clock may read behind the latest instant the ledger recorded
/// and still build, as of that latest instant. Time sync slews small errors and steps only
/// larger ones (chrony's `makestep` and ntpd's step threshold are under a second), so a
/// step back within a second is routine correction, not a wrong clock, and building as of
/// the recorded instant keeps everything published then. Further back, the clock is wrong
/// and the build is refused (`BuildError::ClockBehind`).
pub const CLOCK_TOLERANCE: TimeDelta = TimeDelta::seconds(1);

/// What becomes of a release whose file no longer parses, decided at the first build that
/// sees it broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Its last good version was on the site then: it stays (fail safe after publication).
    Kept,
    /// It was not public yet: nothing of it is built and its mail waits until the file is
    /// fixed, even once its last good version's date passes (fail closed before).
    Held,
}

/// Whether a build writes what it sees into the ledger. A build for the real now does; a
/// what-if build `--at` another instant only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    Record,
    ReadOnly,
}

pub struct Builder {
    config: Config,
    templates: Templates,
    template_diags: Vec<Diagnostic>,
    catalog: Catalog,
    /// Key of each page and listing as last rendered, by output path.
    keys: Map<String, u64>,
    /// Hashes of the files written, by output path.
    memo: Memo,
    out_dir: PathBuf,
    revisions: Option<Revisions>,
    /// Each release's version (content hash, and whether a draft) and the build instant
    /// it was first seen at, for `[dispatch] hold`: an edit, or a draft made public,
    /// starts the count again.
    first_seen: Map<String, ((String, bool), DateTime<Utc>)>,
    /// The pins the last build decided, until they are recorded: a build whose site could
    /// not be written (a full disk) still saw which file holds which release.
    unrecorded_pins: Vec<crate::release::identity::PinChange>,
    /// The last build was refused: the clock reads behind what the ledger recorded. What
    /// the office changed since is not known, so no mail leaves until the clock is right.
    clock_behind: bool,
    /// By release id, the fate of each release whose file is broken now.
    broken: Map<String, Fate>,
    /// The ids of the releases the last written site showed (public, or withdrawn with a
    /// notice): a file that breaks after that keeps its last good version.
    shown: HashSet<String>,
    /// The search entry of each public release, by id, with the page key it was made
    /// for: a release whose text was let go of keeps its entry while its page is unchanged.
    search: Map<String, (u64, Arc<crate::search::Entry>)>,
    /// The search index of the last build, sharing those entries: the daemon's HTTP
    /// server takes it rather than parse the file again (`Builder::search`).
    index: Arc<crate::search::Index>,
}

#[derive(Debug, Clone)]
pub struct BuildReport {
    pub public: usize,
    pub withdrawn: usize,
    pub write: output::Report,
    pub diags: Vec<Diagnostic>,
    pub elapsed: std::time::Duration,
    /// The instant built as of: the one asked for, or the latest the ledger recorded if the
    /// clock read up to `CLOCK_TOLERANCE` behind it.
    pub at: DateTime<Utc>,
    /// Files held: broken before their release was public.
    pub held: Vec<PathBuf>,
    /// The releases this build saw public for the first time (recorded builds only):
    /// publications, whose mail is decided as the ledger records `seen`.
    pub newly_public: Vec<Arc<Release>>,
    /// What the ledger does not know yet (recorded builds only): committed by
    /// `publish::record`, then handed back to `Builder::recorded`.
    pub seen: Seen,
    /// The releases withdrawn (and once public) at the build's instant: their pending
    /// mail is cancelled.
    pub withdrawn_releases: Vec<Withdrawn>,
}

/// A release withdrawn at a build's instant.
#[derive(Debug, Clone)]
pub struct Withdrawn {
    pub id: String,
    pub slug: String,
    /// Its file is gone (the page is made from the ledger's notice), rather than marked
    /// `withdrawn`: an editor that saves by deleting and writing looks the same for a moment.
    pub deleted: bool,
}

impl BuildReport {
    pub fn errors(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// Not an empty folder: nothing is built, so nothing is unpublished.
    #[error("{0} (nothing was built; the site stays as it was)")]
    Unreadable(Diagnostic),
    #[error("cannot write the site")]
    Write(#[from] output::WriteError),
    /// A recorded build on a clock set back: nothing is built or recorded.
    #[error(
        "the clock reads {}, earlier than {} which the ledger recorded: the site is kept and nothing is recorded; check time sync",
        .now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        .latest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    ClockBehind {
        now: DateTime<Utc>,
        latest: DateTime<Utc>,
    },
}

impl BuildError {
    /// Which releases exist is not known after this failure (the folder could not be
    /// read, or the build was refused before reading it): none may be taken for deleted.
    pub fn releases_unknown(&self) -> bool {
        matches!(
            self,
            BuildError::Unreadable(_) | BuildError::ClockBehind { .. }
        )
    }

    /// A build that failed so is tried again shortly (`core::COMMIT_RETRY`), with no
    /// other change: a disk with room again, a clock put right.
    pub fn retried(&self) -> bool {
        matches!(self, BuildError::Write(_) | BuildError::ClockBehind { .. })
    }
}

impl Builder {
    pub fn new(config: Config, out_dir: PathBuf) -> Builder {
        let (templates, template_diags) = Templates::load(&config.paths.templates);
        Builder {
            catalog: Catalog::new(&config),
            config,
            templates,
            template_diags,
            keys: Map::default(),
            memo: Memo::default(),
            out_dir,
            revisions: None,
            first_seen: Map::default(),
            unrecorded_pins: Vec::new(),
            clock_behind: false,
            broken: Map::default(),
            shown: HashSet::new(),
            search: Map::default(),
            index: Arc::default(),
        }
    }

    /// Tracks corrections and publications against what the ledger remembers: a public
    /// release whose content changes gets an `updated` instant. With `Recording::Record`,
    /// each build reports what the ledger is to record (`BuildReport::seen`).
    pub fn with_history(mut self, mut history: History, recording: Recording) -> Builder {
        self.catalog.set_pins(std::mem::take(&mut history.pins));
        self.revisions = Some(Revisions::new(history, recording));
        self
    }

    /// The pins a failed build decided (the site could not be written, or the clock reads
    /// behind), for the ledger to record all the same: what became public is left to the
    /// build that can publish it. Empty for a builder that does not record.
    pub fn unrecorded(&mut self) -> Seen {
        let recording = self
            .revisions
            .as_ref()
            .is_some_and(|r| r.recording == Recording::Record);
        let pins = std::mem::take(&mut self.unrecorded_pins);
        Seen {
            pins: if recording { pins } else { Vec::new() },
            ..Seen::default()
        }
    }

    /// What a build as of `at` saw is now in the ledger: later builds build on it.
    pub fn recorded(&mut self, seen: Seen, at: DateTime<Utc>) {
        self.catalog.pinned(&seen.pins);
        if let Some(revisions) = &mut self.revisions {
            revisions.recorded(seen, at);
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The releases as last loaded (a broken file counts as its last good version).
    pub fn releases(&self) -> impl Iterator<Item = &Arc<Release>> {
        self.catalog.releases()
    }

    /// The release with this id, as last loaded.
    pub fn release(&self, id: &str) -> Option<Arc<Release>> {
        self.releases().find(|r| r.id == id).cloned()
    }

    /// Where the release with this id stands for its mail at `now` (`core::Presence`), its
    /// current version first seen when `seen_since` says, held for `hold`.
    pub fn presence(&self, id: &str, hold: TimeDelta, now: DateTime<Utc>) -> Presence {
        if self.is_held(id) || self.clock_behind {
            // Broken before it was public: its mail waits for the file to be fixed. Or the
            // clock is set back and the folder unread: a file deleted, withdrawn or
            // postponed meanwhile would not be known, so all mail waits.
            return Presence::Hidden;
        }
        Presence::of(self.release(id).as_deref(), self.seen_since(id), hold, now)
    }

    /// The last build was refused because the clock reads behind what the ledger
    /// recorded: what the builder holds may be stale (digests wait, as mail does).
    pub fn clock_behind(&self) -> bool {
        self.clock_behind
    }

    /// Whether the release with this id is held: its file broke before it was public.
    pub fn is_held(&self, id: &str) -> bool {
        self.broken.get(id) == Some(&Fate::Held)
    }

    /// How many releases are held.
    pub fn held(&self) -> usize {
        self.broken.values().filter(|f| **f == Fate::Held).count()
    }

    /// When the version the release with this id has now was first seen by a build.
    pub fn seen_since(&self, id: &str) -> Option<DateTime<Utc>> {
        self.first_seen.get(id).map(|(_, at)| *at)
    }

    /// Scans the releases folder at `at`, parsing only files that changed since the last
    /// call; the templates' problems are among its diagnostics.
    pub fn load(&mut self, at: DateTime<Utc>) -> Loaded {
        let mut loaded = self.catalog.load(at);
        loaded.diags.extend(self.template_diags.iter().cloned());
        loaded
    }

    /// Builds the site as of `at` into the output folder.
    pub fn build(&mut self, at: DateTime<Utc>) -> Result<BuildReport, BuildError> {
        match self.build_once(at) {
            // The office's templates fail to render (a runaway loop, an include of a missing
            // file): the site is built with the built-in ones until they are fixed (a
            // change to them loads them anew), so lifts and mail go on.
            Err(BuildError::Render(e)) if self.templates.overridden() => {
                self.template_diags.push(Diagnostic::file(
                    &self.config.paths.templates,
                    format!("{e}: the site is built with the built-in templates until they are fixed"),
                ).expected("templates that render every page"));
                self.templates = Templates::built_in();
                self.keys.clear();
                self.build_once(at)
            }
            built => built,
        }
    }

    fn build_once(&mut self, at: DateTime<Utc>) -> Result<BuildReport, BuildError> {
        let started = Instant::now();
        let checked = self.instant(at);
        self.clock_behind = matches!(checked, Err(BuildError::ClockBehind { .. }));
        if self.clock_behind {
            // Nothing is built or decided on this clock, but the folder is read: which
            // file holds which release is recorded all the same (`unrecorded`), so a file
            // restored or renamed meanwhile stays itself once the clock is right.
            let mut loaded = self.load(at);
            if loaded.unreadable.is_none() {
                self.unrecorded_pins = std::mem::take(&mut loaded.pins);
            }
        }
        let at = checked?;
        let mut loaded = self.load(at);
        if let Some(unreadable) = loaded.unreadable {
            return Err(BuildError::Unreadable(unreadable));
        }
        // Kept until the site is written (then recorded with the rest), or recorded alone
        // if it cannot be (`unrecorded`).
        self.unrecorded_pins = std::mem::take(&mut loaded.pins);
        let held = self.hold(&mut loaded);

        self.note_first_seen(&loaded.releases, at);
        let mut observed = match &self.revisions {
            Some(revisions) => revisions.observe(&mut loaded.releases, at),
            None => Observed::default(),
        };
        if let Some(revisions) = &self.revisions {
            // Withdrawn before it was ever public: it was never published, so it gets no
            // page saying it was withdrawn either; nothing of it appears. (Without a ledger
            // there is no telling, and the notice stays.)
            loaded.releases.retain(|r| {
                !matches!(planner::visibility(r, at), Visibility::Withdrawn { .. })
                    || revisions.was_public(&r.id)
            });
        }
        let deleted = match &self.revisions {
            // A held release is there, only not built: it gets no withdrawal notice.
            Some(revisions) => {
                let present: Vec<Arc<Release>> =
                    loaded.releases.iter().chain(&held).cloned().collect();
                revisions.deleted(&present, &self.config, at)
            }
            None => Vec::new(),
        };
        let deleted_ids: HashSet<String> = deleted.iter().map(|r| r.id.clone()).collect();
        loaded.releases.extend(deleted);
        let mut plan = planner::plan(loaded.releases.iter().map(|r| &**r), at);

        // Texts let go of that this build shows again: read from their files.
        let in_feeds: HashSet<PathBuf> = render::feed::members(&plan, self.config.site.feed_items)
            .into_iter()
            .map(|r| r.source.clone())
            .collect();
        let missing: HashSet<PathBuf> = plan
            .public
            .iter()
            .filter(|r| r.body.is_none())
            .filter(|r| {
                in_feeds.contains(&r.source) || !self.page_is_current(r) || !self.indexed(r)
            })
            .map(|r| r.source.clone())
            .collect();
        let mut texts: Map<PathBuf, Arc<release::Body>> = Map::default();
        if !missing.is_empty() {
            drop(plan);
            for r in loaded.releases.iter_mut() {
                if !missing.contains(&r.source) {
                    continue;
                }
                match catalog::with_text(&self.config, r) {
                    Ok(full) => {
                        if let Some(body) = &full.body {
                            texts.insert(full.source.clone(), Arc::clone(body));
                        }
                        *r = full;
                    }
                    Err(d) => {
                        self.catalog.forget(&r.source);
                        loaded.diags.push(d.warning());
                    }
                }
            }
            plan = planner::plan(loaded.releases.iter().map(|r| &**r), at);
        }

        // The old addresses of releases whose slug changed answer with a redirect
        // (`releases/<old>/.moved` names the new page; the HTTP server reads it).
        let moved: Vec<(String, Output)> = match &self.revisions {
            Some(revisions) => {
                let shown: HashSet<&str> = plan
                    .public
                    .iter()
                    .chain(&plan.withdrawn)
                    .map(|r| r.slug.as_str())
                    .collect();
                revisions
                    .moved(&plan.public, &shown)
                    .into_iter()
                    .map(|(folder, r)| {
                        let url = release::frontmatter::page_url(&self.config.site, &r.slug);
                        (
                            format!("{folder}{}", output::MOVED),
                            Output::Bytes(url.to_string().into_bytes()),
                        )
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let mut moved = moved;
        moved.push(self.search_index(&plan));
        let staging = Staging::begin(&self.out_dir)?;
        let mut refused = Vec::new();
        let staged = match self.render(&plan, &moved, &staging, &mut refused) {
            Ok(staged) => staged,
            Err((e, staged)) => {
                staging.abort(staged);
                self.keys.clear();
                return Err(e);
            }
        };
        // A refused release is not published: nothing records it, nothing mails it.
        let refused_ids: HashSet<&str> = plan
            .public
            .iter()
            .chain(&plan.withdrawn)
            .filter(|r| refused.iter().any(|d| d.path == r.source))
            .map(|r| r.id.as_str())
            .collect();
        observed.forget(&refused_ids);
        loaded.diags.extend(refused);

        let write = staging.commit(staged, &loaded.broken, &mut self.memo);

        if write.is_err() {
            self.keys.clear();
        }
        let (public_count, withdrawn_count) = (plan.public.len(), plan.withdrawn.len());
        let shown: HashSet<String> = plan
            .public
            .iter()
            .chain(&plan.withdrawn)
            .map(|r| r.id.clone())
            .collect();
        let withdrawn_releases = plan
            .withdrawn
            .iter()
            .map(|r| Withdrawn {
                id: r.id.clone(),
                slug: r.slug.to_string(),
                deleted: deleted_ids.contains(&r.id),
            })
            .collect();
        drop(plan);
        drop(loaded.releases);
        // Kept in memory: the text of releases a feed shows and of those not yet public
        // (their page is rendered at the lift).
        self.catalog.settle(
            |r| {
                in_feeds.contains(&r.source)
                    || matches!(planner::visibility(r, at), Visibility::Embargoed { .. })
            },
            &texts,
        );
        let write = write?;
        self.shown = shown;
        // Only a site that is on disk counts as seen: a build that could not write it
        // (a full disk) reports nothing to record, so the next one sees the same
        // publications, and their mail is still decided.
        let recording = self
            .revisions
            .as_ref()
            .is_some_and(|r| r.recording == Recording::Record);
        let pins = std::mem::take(&mut self.unrecorded_pins);
        let (newly_public, seen) = if recording {
            let mut seen = observed.seen;
            seen.pins = pins;
            (observed.first_seen, seen)
        } else {
            (Vec::new(), Seen::default())
        };
        Ok(BuildReport {
            public: public_count,
            withdrawn: withdrawn_count,
            write,
            diags: loaded.diags,
            elapsed: started.elapsed(),
            at,
            held: held.iter().map(|r| r.source.clone()).collect(),
            newly_public,
            seen,
            withdrawn_releases,
        })
    }

    /// The instant a build asked for `at` builds as of. A recorded build never goes back
    /// behind the latest instant the ledger recorded: up to `CLOCK_TOLERANCE` behind, it
    /// builds as of that instant; further, it is refused, so a clock set back unpublishes
    /// nothing, records nothing and decides no mail. A what-if build is not bound.
    fn instant(&self, at: DateTime<Utc>) -> Result<DateTime<Utc>, BuildError> {
        let latest = match &self.revisions {
            Some(r) if r.recording == Recording::Record => r.latest,
            _ => None,
        };
        match latest {
            Some(latest) if at + CLOCK_TOLERANCE < latest => {
                Err(BuildError::ClockBehind { now: at, latest })
            }
            Some(latest) => Ok(at.max(latest)),
            None => Ok(at),
        }
    }

    /// Decides the fate of each file that no longer parses (see `Fate`) the first time a
    /// build sees it broken, and keeps it until the file parses again. A held release is
    /// taken out of `loaded` (and its page folder is no longer kept), with an error naming
    /// its file; it is returned, since it is still there (no withdrawal notice is made
    /// for it).
    fn hold(&mut self, loaded: &mut Loaded) -> Vec<Arc<Release>> {
        let mut fates = Map::default();
        let mut held: Vec<&Failing> = Vec::new();
        for failing in &loaded.failing {
            let Some(good) = &failing.last_good else {
                continue;
            };
            let fate = match self.broken.get(&good.id) {
                Some(fate) => *fate,
                None if self.shown.contains(&good.id) => Fate::Kept,
                None => Fate::Held,
            };
            fates.insert(good.id.clone(), fate);
            if fate == Fate::Held {
                held.push(failing);
            }
        }
        self.broken = fates;
        if held.is_empty() {
            return Vec::new();
        }
        let is_held = |r: &Arc<Release>| {
            held.iter()
                .any(|f| f.last_good.as_ref().is_some_and(|g| Arc::ptr_eq(g, r)))
        };
        let (out, kept): (Vec<_>, Vec<_>) = loaded.releases.drain(..).partition(is_held);
        loaded.releases = kept;
        for failing in &held {
            if let Some(page) = &failing.page {
                loaded.broken.retain(|b| b != page);
            }
            loaded.diags.push(Diagnostic::file(
                &failing.file,
                "held: not published until it is fixed (it broke before it was public)",
            ));
        }
        out
    }

    /// Notes when each release's current content was first seen; forgets releases gone.
    fn note_first_seen(&mut self, releases: &[Arc<Release>], at: DateTime<Utc>) {
        for r in releases {
            match self.first_seen.get(&r.id) {
                Some(((hash, draft), _)) if *hash == r.content_hash && *draft == r.draft => {}
                _ => {
                    let version = (r.content_hash.clone(), r.draft);
                    self.first_seen.insert(r.id.clone(), (version, at));
                }
            }
        }
        if self.first_seen.len() > releases.len() {
            let present: HashSet<&str> = releases.iter().map(|r| r.id.as_str()).collect();
            self.first_seen
                .retain(|id, _| present.contains(id.as_str()));
        }
    }

    /// The search index the last build wrote (`search::INDEX`), if it was committed.
    pub fn search(&self) -> Arc<crate::search::Index> {
        Arc::clone(&self.index)
    }

    /// Whether the search entry made for this release is still what it would be now.
    fn indexed(&self, r: &Release) -> bool {
        self.search
            .get(&r.id)
            .is_some_and(|(key, _)| *key == r.page_key())
    }

    /// The search index of what this build publishes (`search::INDEX`): written with the
    /// site and committed with it, so search shows what the pages show. Entries are made
    /// again only for releases whose page changed.
    fn search_index(&mut self, plan: &Plan<'_>) -> (String, Output) {
        let mut made = Map::default();
        for r in &plan.public {
            // An entry kept is one made with the text: it keeps its key though the text
            // has been let go of since. One made without the text (it could not be read
            // again) is keyed 0, so the next build reads the text and makes it again.
            let (key, entry) = match self.search.remove(&r.id) {
                Some((key, entry)) if key == r.page_key() => (key, entry),
                _ => (
                    if r.body.is_some() { r.page_key() } else { 0 },
                    Arc::new(crate::search::Entry::of(r, &self.config)),
                ),
            };
            made.insert(r.id.clone(), (key, entry));
        }
        // The index on disk is kept when it holds the same entries (a build with nothing
        // changed, or changes no entry shows): 14 MB of JSON at 10,000 releases is not
        // written again for nothing.
        let path = crate::search::INDEX.to_string();
        let key = {
            // A sum, so the map's order does not matter.
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            let hasher = BuildHasherDefault::<DefaultHasher>::default();
            made.iter().fold(made.len() as u64, |sum, (id, (key, _))| {
                sum.wrapping_add(hasher.hash_one((id, key)))
            })
        };
        if self.keys.get(&path) == Some(&key) && self.memo.contains_key(&path) {
            self.search = made;
            return (path, Output::Kept);
        }
        self.keys.insert(path.clone(), key);
        let index = crate::search::Index::new(made.values().map(|(_, e)| Arc::clone(e)).collect());
        self.search = made;
        let bytes = index.to_bytes();
        self.index = Arc::new(index);
        (path, Output::Bytes(bytes))
    }

    /// Whether a release's page is on disk as it would be rendered now.
    fn page_is_current(&self, r: &Release) -> bool {
        let page = format!("{}index.html", r.path());
        self.keys.get(&page) == Some(&r.page_key()) && self.memo.contains_key(&page)
    }

    /// Renders and stages the whole site. Listings are rendered here; release pages, the
    /// bulk of a cold build, on every core, each written out as soon as it is rendered so
    /// the site is never held in memory whole. On error, what was staged is handed back to
    /// be cleaned up.
    fn render(
        &mut self,
        plan: &Plan<'_>,
        moved: &[(String, Output)],
        staging: &Staging,
        refused: &mut Vec<Diagnostic>,
    ) -> Result<Vec<Staged>, (BuildError, Vec<Staged>)> {
        let Builder {
            config,
            templates,
            keys,
            memo,
            ..
        } = self;
        let memo = &*memo;
        let on_disk = |path: &str| memo.contains_key(path);
        let mut staged = Vec::new();

        // Which release pages must be rendered; the rest stay as written.
        let mut todo = Vec::new();
        for r in plan.public.iter().chain(plan.withdrawn.iter()) {
            let page = format!("{}index.html", r.path());
            let key = r.page_key();
            if keys.get(&page) == Some(&key) && on_disk(&page) {
                match staging.stage(&page, &Output::Kept, memo) {
                    Ok(s) => staged.push(s),
                    Err(e) => return Err((e.into(), staged)),
                }
            } else if r.body.is_none() && r.withdrawn.is_none() {
                // Its text could not be read again (see `build`): the page stays as it is
                // until a build that can, and is not written at all if it is not there.
                keys.remove(&page);
                if on_disk(&page) {
                    match staging.stage(&page, &Output::Kept, memo) {
                        Ok(s) => staged.push(s),
                        Err(e) => return Err((e.into(), staged)),
                    }
                }
            } else {
                keys.insert(page.clone(), key);
                todo.push((page, *r));
            }
            if r.withdrawn.is_none() {
                for (path, output) in render::release_files(r) {
                    match staging.stage(&path, &output, memo) {
                        Ok(s) => staged.push(s),
                        Err(e) => return Err((e.into(), staged)),
                    }
                }
                // Web-sized images are made once: one already written since its original
                // last changed stays as it is. One that cannot be made (a file that lies
                // about what it holds) is the original itself, so the page's link works.
                for web in render::images::web_images(r) {
                    let output = if staging.holds_since(&web.path, &web.original) {
                        Output::Kept
                    } else {
                        match render::images::web_version(&web.original, &web.web) {
                            Ok(bytes) => Output::Bytes(bytes),
                            Err(_) => Output::Copy {
                                len: std::fs::metadata(&web.original).map_or(0, |m| m.len()),
                                from: web.original,
                            },
                        }
                    };
                    match staging.stage(&web.path, &output, memo) {
                        Ok(s) => staged.push(s),
                        Err(e) => return Err((e.into(), staged)),
                    }
                }
            }
        }

        for (path, output) in moved {
            match staging.stage(path, output, memo) {
                Ok(s) => staged.push(s),
                Err(e) => return Err((e.into(), staged)),
            }
        }

        // The listings on one thread, the release pages on the others, all at once. A panic
        // while rendering a release refuses that release alone (`render::guard`): its page
        // stays as it was, and the listings are rendered again without it.
        let (config, templates) = (&*config, &*templates);
        let render_pages = |part: &[(String, &Release)]| {
            let mut done = Vec::with_capacity(part.len());
            let mut refused = Vec::new();
            for (page, release) in part {
                let rendered = match render::guard::catch(release, || {
                    render::release_page(config, templates, release)
                }) {
                    Ok(rendered) => rendered.map(Output::Bytes).map_err(BuildError::from),
                    Err(refusal) => {
                        refused.push(refusal);
                        if !on_disk(page) {
                            continue;
                        }
                        Ok(Output::Kept)
                    }
                };
                match rendered.and_then(|output| Ok(staging.stage(page, &output, memo)?)) {
                    Ok(s) => done.push(s),
                    Err(e) => return (done, refused, Some(e)),
                }
            }
            (done, refused, None)
        };
        let stage_listings = |plan: &Plan<'_>, keys: &mut Map<String, u64>| {
            let mut done = Vec::new();
            let (listings, refused) =
                match render::guard::listings(config, templates, plan, keys, &on_disk) {
                    Ok(rendered) => rendered,
                    Err(e) => return (done, Vec::new(), Some(e.into())),
                };
            for (path, output) in &listings {
                match staging.stage(path, output, memo) {
                    Ok(s) => done.push(s),
                    Err(e) => return (done, refused, Some(e.into())),
                }
            }
            (done, refused, None)
        };
        let listing_keys = &mut *keys;
        let (mut listed, mut results) = std::thread::scope(|scope| {
            let listings = scope.spawn(|| stage_listings(plan, listing_keys));
            let pages = crate::cores::split(&todo, render_pages);
            let listed = listings
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (listed, pages)
        });
        let refused_pages: HashSet<&std::path::Path> = results
            .iter()
            .flat_map(|(_, refused, _)| refused.iter().map(|d| d.path.as_path()))
            .collect();
        if !refused_pages.is_empty() {
            let shown = |r: &&Release| !refused_pages.contains(r.source.as_path());
            let rest = Plan {
                at: plan.at,
                public: plan.public.iter().copied().filter(shown).collect(),
                withdrawn: plan.withdrawn.iter().copied().filter(shown).collect(),
            };
            staging.discard(std::mem::take(&mut listed.0));
            // The keys noted for the discarded listings name nothing on disk.
            keys.clear();
            listed = stage_listings(&rest, keys);
        }
        results.push(listed);
        let mut first_error = None;
        for (done, refusals, error) in results {
            staged.extend(done);
            refused.extend(refusals);
            first_error = first_error.or(error);
        }
        match first_error {
            Some(e) => Err((e, staged)),
            None => Ok(staged),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A site of two releases, `hel` and `trasig`, whose templates panic on `trasig`.
    fn site(template: &str, source: &str) -> (tempfile::TempDir, Builder) {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::defaults(dir.path());
        std::fs::create_dir_all(&config.paths.releases).expect("releases");
        for (name, title) in [("hel", "Hel"), ("trasig", "Trasig")] {
            let text =
                format!("+++\ntitle = \"{title}\"\ndate = 2020-01-01\n+++\n\nText om {title}.\n");
            std::fs::write(config.paths.releases.join(format!("{name}.md")), text).expect("write");
        }
        let out = dir.path().join("public");
        let mut builder =
            Builder::new(config, out).with_history(History::default(), Recording::Record);
        builder.templates = Templates::with_a_bug(template, source);
        (dir, builder)
    }

    fn read(dir: &tempfile::TempDir, path: &str) -> Option<String> {
        std::fs::read_to_string(dir.path().join("public").join(path)).ok()
    }

    /// The error that refuses `trasig`, once, naming its file.
    fn refused(report: &BuildReport) -> &Diagnostic {
        let errors: Vec<&Diagnostic> = report.diags.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].path.ends_with("releases/trasig.md"),
            "{}",
            errors[0]
        );
        assert!(
            errors[0]
                .to_string()
                .contains("could not render this release (a renderer bug)"),
            "{}",
            errors[0]
        );
        errors[0]
    }

    #[test]
    fn a_panic_rendering_one_release_page_refuses_that_release_and_builds_the_rest() {
        let (dir, mut builder) = site(
            "release.html",
            "{% if release.title == 'Trasig' %}{{ panic_now('a renderer bug') }}{% endif %}<h1>{{ release.title }}</h1>",
        );
        let at = "2020-06-01T00:00:00Z".parse().expect("instant");
        for build in 0..2 {
            let report = builder.build(at).expect("the build goes on");
            refused(&report);
            assert_eq!(
                report
                    .newly_public
                    .iter()
                    .map(|r| r.slug.as_str())
                    .collect::<Vec<_>>(),
                if build == 0 { vec!["hel"] } else { vec![] },
                "a refused release is not published, so not mailed"
            );
            assert!(
                report
                    .seen
                    .revisions
                    .iter()
                    .all(|(id, _)| !id.ends_with(":trasig"))
            );
            builder.recorded(report.seen, at);
            assert!(read(&dir, "releases/hel/index.html").is_some_and(|p| p.contains("Hel")));
            assert_eq!(read(&dir, "releases/trasig/index.html"), None);
            for feed in [
                "feed.atom",
                "feed.rss",
                "feed.json",
                "index.html",
                "sitemap.xml",
            ] {
                let text = read(&dir, feed).expect("the listings are written");
                assert!(text.contains("/releases/hel/"), "{feed}");
                assert!(!text.contains("trasig"), "{feed} lists the refused release");
            }
        }
    }

    #[test]
    fn a_panic_rendering_the_listings_refuses_the_release_that_makes_it() {
        let index = "{% for r in releases %}{% if r.title == 'Trasig' %}{{ panic_now('a renderer bug') }}{% endif %}<a href=\"{{ r.url }}\">{{ r.title }}</a>{% endfor %}";
        let (dir, mut builder) = site("index.html", index);
        let at = "2020-06-01T00:00:00Z".parse().expect("instant");
        let report = builder.build(at).expect("the build goes on");
        refused(&report);
        for listing in ["index.html", "feed.atom", "sitemap.xml"] {
            let text = read(&dir, listing).expect("the listings are written");
            assert!(text.contains("/releases/hel/"), "{listing}");
            assert!(
                !text.contains("trasig"),
                "{listing} lists the refused release"
            );
        }
        assert!(report.newly_public.iter().all(|r| r.slug.as_str() == "hel"));
    }

    /// A recording builder on an empty history over a releases folder holding `hemlig.md`.
    fn hemlig(text: &str) -> (tempfile::TempDir, Builder) {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::defaults(dir.path());
        std::fs::create_dir_all(&config.paths.releases).expect("releases");
        let out = dir.path().join("public");
        let builder = Builder::new(config, out).with_history(History::default(), Recording::Record);
        let b = (dir, builder);
        write_hemlig(&b.0, text);
        b
    }

    fn write_hemlig(dir: &tempfile::TempDir, text: &str) {
        let path = dir.path().join("releases/hemlig.md");
        std::fs::write(path, text).expect("write");
    }

    fn hemlig_release(date: &str, body: &str) -> String {
        format!(
            "+++\ntitle = \"Hemlig\"\nid = \"tag:example.org,2020:hemlig\"\ndate = \"{date}\"\n+++\n\n{body}\n"
        )
    }

    /// The edit the issue reports: made a draft again, with a date that does not parse.
    const BROKEN: &str = "+++\ntitle = \"Hemlig\"\nid = \"tag:example.org,2020:hemlig\"\ndate = \"the 2nd, maybe\"\ndraft = true\n+++\n\nUtkast.\n";
    const ID: &str = "tag:example.org,2020:hemlig";

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("instant")
    }

    /// Builds as of `at` and counts what it saw as recorded.
    fn built(builder: &mut Builder, at: &str) -> BuildReport {
        let mut report = builder.build(t(at)).expect("build");
        let seen = std::mem::take(&mut report.seen);
        builder.recorded(seen, report.at);
        report
    }

    fn shown(dir: &tempfile::TempDir) -> bool {
        read(dir, "releases/hemlig/index.html").is_some()
            || ["feed.atom", "feed.json", "index.html", "sitemap.xml"]
                .iter()
                .any(|f| read(dir, f).is_some_and(|text| text.contains("emlig")))
    }

    #[test]
    fn a_release_broken_before_its_date_is_held_past_it_until_its_file_is_fixed() {
        let (dir, mut builder) = hemlig(&hemlig_release("2020-01-02T10:00:00Z", "Hemligt."));
        let report = built(&mut builder, "2020-01-01T00:00:00Z");
        assert!(report.newly_public.is_empty() && !shown(&dir));

        write_hemlig(&dir, BROKEN);
        // At its minute, and a day later: the last good version's date has passed.
        for at in ["2020-01-02T10:00:00Z", "2020-01-03T00:00:00Z"] {
            let report = built(&mut builder, at);
            assert!(!shown(&dir), "held, yet shown at {at}");
            assert!(report.newly_public.is_empty(), "published at {at}");
            assert!(report.seen.is_empty(), "recorded at {at}");
            assert_eq!(report.held.len(), 1, "{at}");
            assert!(
                report.diags.iter().any(|d| d.is_error()
                    && d.path.ends_with("releases/hemlig.md")
                    && d.to_string()
                        .contains("held: not published until it is fixed")),
                "{:?}",
                report.diags
            );
            assert_eq!(builder.held(), 1);
            assert_eq!(
                builder.presence(ID, TimeDelta::zero(), t(at)),
                Presence::Hidden,
                "its queued mail would leave at {at}"
            );
        }

        // Fixed: it follows its new content, published and mailed now.
        write_hemlig(
            &dir,
            &hemlig_release("2020-01-02T10:00:00Z", "Hemligt, rättat."),
        );
        let report = built(&mut builder, "2020-01-03T00:01:00Z");
        assert_eq!(
            report
                .newly_public
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            [ID]
        );
        assert!(report.held.is_empty() && builder.held() == 0);
        assert!(read(&dir, "releases/hemlig/index.html").is_some_and(|p| p.contains("rättat")));
        assert_eq!(
            builder.presence(ID, TimeDelta::zero(), t("2020-01-03T00:01:00Z")),
            Presence::Public
        );
    }

    #[test]
    fn a_release_broken_after_it_was_public_keeps_its_last_good_output() {
        let (dir, mut builder) = hemlig(&hemlig_release("2020-01-02T10:00:00Z", "Hemligt."));
        let report = built(&mut builder, "2020-01-02T10:00:00Z");
        assert_eq!(report.newly_public.len(), 1);

        write_hemlig(&dir, BROKEN);
        let report = built(&mut builder, "2020-01-02T10:00:01Z");
        assert!(report.held.is_empty() && builder.held() == 0);
        assert!(read(&dir, "releases/hemlig/index.html").is_some_and(|p| p.contains("Hemligt.")));
        assert!(read(&dir, "feed.atom").is_some_and(|f| f.contains("Hemlig")));
        assert_eq!(
            builder.presence(ID, TimeDelta::zero(), t("2020-01-02T10:00:01Z")),
            Presence::Public
        );
    }

    #[test]
    fn a_recorded_build_on_a_clock_set_back_is_refused_and_keeps_the_site() {
        let (dir, mut builder) = hemlig(&hemlig_release("2020-01-02T10:00:00Z", "Hemligt."));
        built(&mut builder, "2020-01-02T10:00:00Z");
        let page = read(&dir, "releases/hemlig/index.html").expect("published");

        // An hour back: the release would be embargoed again.
        match builder.build(t("2020-01-02T09:00:00Z")) {
            Err(e @ BuildError::ClockBehind { .. }) => assert_eq!(
                e.to_string(),
                "the clock reads 2020-01-02T09:00:00Z, earlier than 2020-01-02T10:00:00Z which the ledger recorded: the site is kept and nothing is recorded; check time sync"
            ),
            other => panic!("built on a clock set back: {:?}", other.map(|r| r.at)),
        }
        assert_eq!(read(&dir, "releases/hemlig/index.html"), Some(page));
        assert!(read(&dir, "feed.atom").is_some_and(|f| f.contains("Hemlig")));

        // Under a second back (time sync's own step): built as of the recorded instant.
        let report = builder
            .build(t("2020-01-02T09:59:59.500Z"))
            .expect("a step within the tolerance builds");
        assert_eq!(report.at, t("2020-01-02T10:00:00Z"));
        assert_eq!(report.public, 1, "unpublished by a half-second step");

        // A what-if build is not bound by the ledger's clock.
        let mut what_if = Builder::new(builder.config().clone(), dir.path().join("what-if"))
            .with_history(
                History {
                    latest: Some(t("2020-01-02T10:00:00Z")),
                    ..History::default()
                },
                Recording::ReadOnly,
            );
        let report = what_if.build(t("2020-01-01T00:00:00Z")).expect("what-if");
        assert_eq!(report.public, 0);
    }
}
