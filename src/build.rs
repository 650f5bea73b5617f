//! The build: releases folder + config + instant → files in the output folder. `Builder`
//! keeps what it parsed and rendered, so after one file changes only that release is
//! parsed and rendered again, and only the listings that show it; the rest of the site is
//! left as written. A release that fails to parse keeps its last good version in a
//! long-running builder, and its files on disk in any case.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::diagnostic::{Diagnostic, SourceText};
use crate::ledger::{History, Notice, Seen};
use crate::output::{self, Memo, Staged, Staging};
use crate::planner::{self, Plan, Visibility};
use crate::release::revision::{self, Revision};
use crate::release::{self, Release, Slug, source};
use crate::render::{self, Map, Output, Templates};

/// A parse result, remembered with the stamp of the file it came from.
struct Cached {
    stamp: u64,
    release: Option<Arc<Release>>,
    diags: Vec<Diagnostic>,
}

/// Whether a build writes what it sees into the ledger. A build for the real now does; a
/// what-if build `--at` another instant only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    Record,
    ReadOnly,
}

/// What the ledger remembers of published releases, read once when the builder starts and
/// kept in step with every commit of what a build saw (`recorded`).
struct Revisions {
    recording: Recording,
    known: HashMap<String, Revision>,
    notices: HashMap<String, Notice>,
}

pub struct Builder {
    config: Config,
    templates: Templates,
    template_diags: Vec<Diagnostic>,
    /// By `Entry::key`, the name in the releases folder.
    parsed: Map<String, Cached>,
    last_good: Map<String, Arc<Release>>,
    /// Key of each page and listing as last rendered, by output path.
    keys: Map<String, u64>,
    /// Hashes of the files written, by output path.
    memo: Memo,
    out_dir: PathBuf,
    revisions: Option<Revisions>,
}

/// What a build saw of the public releases: for the ledger, once the site is written.
#[derive(Default)]
struct Observed {
    /// Seen public for the first time: publications.
    first_seen: Vec<Arc<Release>>,
    seen: Seen,
}

impl Observed {
    /// Leaves out releases this build refused (a renderer panicked on them).
    fn forget(&mut self, ids: &HashSet<&str>) {
        self.first_seen.retain(|r| !ids.contains(r.id.as_str()));
        self.seen
            .revisions
            .retain(|(id, _)| !ids.contains(id.as_str()));
        self.seen
            .notices
            .retain(|(id, _)| !ids.contains(id.as_str()));
    }
}

/// Every release known at a moment, and every problem found while reading them.
pub struct Loaded {
    pub releases: Vec<Arc<Release>>,
    pub diags: Vec<Diagnostic>,
    /// Page folders (`releases/<slug>/`) of releases that failed to parse.
    pub broken: Vec<String>,
    /// The releases folder could not be read at all: the releases are those last loaded.
    pub unreadable: Option<Diagnostic>,
}

#[derive(Debug, Clone)]
pub struct BuildReport {
    pub public: usize,
    pub withdrawn: usize,
    pub write: output::Report,
    pub diags: Vec<Diagnostic>,
    pub elapsed: std::time::Duration,
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
}

impl Builder {
    pub fn new(config: Config, out_dir: PathBuf) -> Builder {
        let (templates, template_diags) = Templates::load(&config.paths.templates);
        Builder {
            config,
            templates,
            template_diags,
            parsed: Map::default(),
            last_good: Map::default(),
            keys: Map::default(),
            memo: Memo::default(),
            out_dir,
            revisions: None,
        }
    }

    /// Tracks corrections and publications against what the ledger remembers: a public
    /// release whose content changes gets an `updated` instant. With `Recording::Record`,
    /// each build reports what the ledger is to record (`BuildReport::seen`).
    pub fn with_history(mut self, history: History, recording: Recording) -> Builder {
        self.revisions = Some(Revisions {
            recording,
            known: history.revisions,
            notices: history.notices,
        });
        self
    }

    /// What a build saw is now in the ledger: later builds build on it.
    pub fn recorded(&mut self, seen: Seen) {
        if let Some(revisions) = &mut self.revisions {
            revisions.known.extend(seen.revisions);
            revisions.notices.extend(seen.notices);
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The releases as last loaded (a broken file counts as its last good version).
    pub fn releases(&self) -> impl Iterator<Item = &Arc<Release>> {
        self.last_good.values()
    }

    /// The release with this id, as last loaded.
    pub fn release(&self, id: &str) -> Option<Arc<Release>> {
        self.releases().find(|r| r.id == id).cloned()
    }

    /// Scans the releases folder, parsing only files that changed since the last call.
    pub fn load(&mut self) -> Loaded {
        let (entries, mut diags) = match source::scan(&self.config.paths.releases) {
            Ok(found) => found,
            Err(unreadable) => {
                // Nothing is known of the folder now (unmounted, permissions): the releases
                // stay as last loaded, and `build` writes nothing.
                let mut releases: Vec<Arc<Release>> = self.last_good.values().cloned().collect();
                releases.sort_by(|a, b| a.source.cmp(&b.source));
                let mut diags = vec![unreadable.clone()];
                diags.extend(self.template_diags.iter().cloned());
                return Loaded {
                    releases,
                    diags,
                    broken: Vec::new(),
                    unreadable: Some(unreadable),
                };
            }
        };

        let stale: Vec<&source::Entry> = entries
            .iter()
            .filter(|e| self.parsed.get(&e.key).is_none_or(|c| c.stamp != e.stamp))
            .collect();
        let fresh = parse_all(&stale, &self.config);
        for (entry, cached) in stale.iter().zip(fresh) {
            if let Some(r) = &cached.release {
                self.last_good.insert(entry.key.clone(), Arc::clone(r));
            }
            self.parsed.insert(entry.key.clone(), cached);
        }
        if self.parsed.len() > entries.len() {
            let present: std::collections::HashSet<&str> =
                entries.iter().map(|e| e.key.as_str()).collect();
            self.parsed.retain(|key, _| present.contains(key.as_str()));
            self.last_good
                .retain(|key, _| present.contains(key.as_str()));
        }

        let mut releases = Vec::with_capacity(entries.len());
        let mut broken = Vec::new();
        for entry in &entries {
            let Some(cached) = self.parsed.get(&entry.key) else {
                continue;
            };
            diags.extend(cached.diags.iter().cloned());
            match &cached.release {
                Some(r) => releases.push(Arc::clone(r)),
                None => {
                    // Keep serving what was good until the file is fixed.
                    if let Some(good) = self.last_good.get(&entry.key) {
                        broken.push(good.path());
                        releases.push(Arc::clone(good));
                    } else if let Ok(slug) = Slug::parse(Slug::from_file_name(&entry.name)) {
                        broken.push(format!("releases/{slug}/"));
                    }
                }
            }
        }

        let releases = reject_duplicates(releases, &mut diags);

        diags.extend(self.template_diags.iter().cloned());
        Loaded {
            releases,
            diags,
            broken,
            unreadable: None,
        }
    }

    /// Builds the site as of `at` into the output folder.
    pub fn build(&mut self, at: DateTime<Utc>) -> Result<BuildReport, BuildError> {
        let started = Instant::now();
        let mut loaded = self.load();
        if let Some(unreadable) = loaded.unreadable {
            return Err(BuildError::Unreadable(unreadable));
        }

        let mut observed = self.apply_revisions(&mut loaded.releases, at);
        if let Some(revisions) = &self.revisions {
            // Withdrawn before it was ever public: it was never published, so it gets no
            // page saying it was withdrawn either; nothing of it appears. (Without a ledger
            // there is no telling, and the notice stays.)
            loaded.releases.retain(|r| {
                !matches!(planner::visibility(r, at), Visibility::Withdrawn { .. })
                    || revisions.known.contains_key(&r.id)
            });
        }
        let deleted = self.deleted(&loaded.releases, at);
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
            .filter(|r| in_feeds.contains(&r.source) || !self.page_is_current(r))
            .map(|r| r.source.clone())
            .collect();
        let mut texts: Map<PathBuf, Arc<release::Body>> = Map::default();
        if !missing.is_empty() {
            drop(plan);
            for r in loaded.releases.iter_mut() {
                if !missing.contains(&r.source) {
                    continue;
                }
                match with_text(&self.config, r) {
                    Ok(full) => {
                        if let Some(body) = &full.body {
                            texts.insert(full.source.clone(), Arc::clone(body));
                        }
                        *r = full;
                    }
                    Err(d) => {
                        self.forget_stamp(&r.source);
                        loaded.diags.push(d.warning());
                    }
                }
            }
            plan = planner::plan(loaded.releases.iter().map(|r| &**r), at);
        }

        let staging = Staging::begin(&self.out_dir)?;
        let mut refused = Vec::new();
        let staged = match self.render(&plan, &staging, &mut refused) {
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
        self.settle(at, &in_feeds, &texts);
        let write = write?;
        // Only a site that is on disk counts as seen: a build that could not write it
        // (a full disk) reports nothing to record, so the next one sees the same
        // publications, and their mail is still decided.
        let recording = self
            .revisions
            .as_ref()
            .is_some_and(|r| r.recording == Recording::Record);
        let (newly_public, seen) = if recording {
            (observed.first_seen, observed.seen)
        } else {
            (Vec::new(), Seen::default())
        };
        Ok(BuildReport {
            public: public_count,
            withdrawn: withdrawn_count,
            write,
            diags: loaded.diags,
            elapsed: started.elapsed(),
            newly_public,
            seen,
            withdrawn_releases,
        })
    }

    /// Whether a release's page is on disk as it would be rendered now.
    fn page_is_current(&self, r: &Release) -> bool {
        let page = format!("{}index.html", r.path());
        self.keys.get(&page) == Some(&r.page_key()) && self.memo.contains_key(&page)
    }

    /// Makes the next `load` parse the file of `source` again, whatever its stamp says.
    fn forget_stamp(&mut self, source: &std::path::Path) {
        for cached in self.parsed.values_mut() {
            if cached.release.as_ref().is_some_and(|r| r.source == source) {
                cached.stamp = 0;
            }
        }
    }

    /// Keeps in memory the text of the releases that may be rendered soon: those a feed
    /// shows and those not yet public (their page is rendered at the lift). The others' is
    /// let go of, and read from the file again when a page or a mail needs it (`with_text`).
    /// A release whose file no longer parses keeps its last good version as it is (its
    /// text, if still held, stays: it could not be read again).
    fn settle(
        &mut self,
        at: DateTime<Utc>,
        in_feeds: &HashSet<PathBuf>,
        texts: &Map<PathBuf, Arc<release::Body>>,
    ) {
        let Builder {
            parsed, last_good, ..
        } = self;
        for (key, cached) in parsed.iter_mut() {
            let Some(r) = &cached.release else {
                continue;
            };
            let keep = in_feeds.contains(&r.source)
                || matches!(planner::visibility(r, at), Visibility::Embargoed { .. });
            let settled = match (keep, &r.body) {
                (false, Some(_)) => r.without_body(),
                (true, None) => match texts.get(&r.source) {
                    Some(body) => Release {
                        body: Some(Arc::clone(body)),
                        ..(**r).clone()
                    },
                    None => continue,
                },
                _ => continue,
            };
            let settled = Arc::new(settled);
            if let Some(good) = last_good.get_mut(key)
                && Arc::ptr_eq(good, r)
            {
                *good = Arc::clone(&settled);
            }
            cached.release = Some(settled);
        }
    }

    /// Sets `updated` on releases corrected after publication, and says what the ledger
    /// is to record once the site is written (`record`).
    fn apply_revisions(&mut self, releases: &mut [Arc<Release>], at: DateTime<Utc>) -> Observed {
        let Some(revisions) = &mut self.revisions else {
            return Observed::default();
        };
        let mut changed = Vec::new();
        let mut first_seen = Vec::new();
        let mut notices = Vec::new();
        for r in releases.iter_mut() {
            let visibility = planner::visibility(r, at);
            // A record means "was public": one withdrawn before anyone saw it public gets
            // none (and so no withdrawal notice, see `build`).
            let published = match visibility {
                Visibility::Public => true,
                Visibility::Withdrawn { .. } => revisions.known.contains_key(&r.id),
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
            if revisions.notices.get(&r.id) != Some(&notice) {
                notices.push((r.id.clone(), notice));
            }
            let record = revisions.known.get(&r.id);
            if record.is_none() && planner::visibility(r, at) == Visibility::Public {
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
            },
        }
    }

    /// Releases published by `at` whose files are gone: each still has a page at its URL,
    /// saying it was withdrawn (SPEC §4), made from what the ledger remembers of it. None
    /// takes the slug of a release that is there.
    fn deleted(&self, present: &[Arc<Release>], at: DateTime<Utc>) -> Vec<Arc<Release>> {
        let Some(revisions) = &self.revisions else {
            return Vec::new();
        };
        let ids: std::collections::HashSet<&str> = present.iter().map(|r| r.id.as_str()).collect();
        let slugs: std::collections::HashSet<&str> =
            present.iter().map(|r| r.slug.as_str()).collect();
        let mut gone = Vec::new();
        for (id, notice) in &revisions.notices {
            let Some(revision) = revisions.known.get(id) else {
                continue;
            };
            if ids.contains(id.as_str())
                || slugs.contains(notice.slug.as_str())
                || notice.date > at
                || revision.first_seen > at
            {
                continue;
            }
            if let Some(r) = release::deleted(id, notice, &revision.hash, &self.config) {
                gone.push(Arc::new(r));
            }
        }
        gone
    }

    /// Renders and stages the whole site. Listings are rendered here; release pages, the
    /// bulk of a cold build, on every core, each written out as soon as it is rendered so
    /// the site is never held in memory whole. On error, what was staged is handed back to
    /// be cleaned up.
    fn render(
        &mut self,
        plan: &Plan<'_>,
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

/// `r` with its text, read again from its file if the builder let go of it. An error if
/// the file no longer gives the same release (edited, broken or gone since it was read):
/// the next build reads it anew.
pub fn with_text(config: &Config, r: &Arc<Release>) -> Result<Arc<Release>, Diagnostic> {
    if r.body.is_some() {
        return Ok(Arc::clone(r));
    }
    let dir = &config.paths.releases;
    let changed = || {
        Diagnostic::file(
            &r.source,
            "changed since it was read: its text is read again by the next build",
        )
    };
    let key = r
        .source
        .strip_prefix(dir)
        .ok()
        .and_then(|p| p.components().next())
        .and_then(|c| c.as_os_str().to_str())
        .ok_or_else(changed)?;
    let entry = source::entry(dir, key)?.ok_or_else(changed)?;
    let file = source::read(&entry)?;
    let fresh = release::parse(&file, &config.site)
        .release
        .filter(|f| f.id == r.id && f.content_hash == r.content_hash)
        .ok_or_else(changed)?;
    Ok(Arc::new(Release {
        body: fresh.body,
        ..(**r).clone()
    }))
}

/// Reads and parses entries, on every core: parsing and sanitising dominate a cold build.
fn parse_all(entries: &[&source::Entry], config: &Config) -> Vec<Cached> {
    crate::cores::split(entries, |part| {
        part.iter()
            .map(|e| parse_one(e, config))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

fn parse_one(entry: &source::Entry, config: &Config) -> Cached {
    match source::read(entry) {
        Ok(file) => {
            let parsed = release::parse(&file, &config.site);
            Cached {
                stamp: entry.stamp,
                release: parsed.release.map(Arc::new),
                diags: parsed.diags,
            }
        }
        Err(d) => Cached {
            stamp: entry.stamp,
            release: None,
            diags: vec![d],
        },
    }
}

/// Two releases may not share a slug or an id: the one published first (then the first
/// by path) keeps it, the others are refused. The order of `releases` is kept.
fn reject_duplicates(
    releases: Vec<Arc<Release>>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Arc<Release>> {
    let first =
        |a: &Release, b: &Release| (a.date, a.source.as_os_str()) < (b.date, b.source.as_os_str());
    let mut keep = vec![true; releases.len()];
    for key in [Key::Slug, Key::Id] {
        let mut owner: Map<&str, usize> =
            Map::with_capacity_and_hasher(releases.len(), Default::default());
        for (i, r) in releases.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let name = match key {
                Key::Slug => r.slug.as_str(),
                Key::Id => r.id.as_str(),
            };
            let Some(&j) = owner.get(name) else {
                owner.insert(name, i);
                continue;
            };
            let (winner, loser) = if first(r, &releases[j]) {
                (i, j)
            } else {
                (j, i)
            };
            keep[loser] = false;
            owner.insert(name, winner);
            let (what, value) = match key {
                Key::Slug => ("slug", releases[loser].slug.as_str()),
                Key::Id => ("id", releases[loser].id.as_str()),
            };
            diags.push(
                SourceText::whole(&releases[loser].source, "")
                    .error(
                        0..0,
                        format!(
                            "the {what} `{value}` is already used by {}",
                            releases[winner].source.display()
                        ),
                    )
                    .expected("a unique slug: rename the file or set `slug`"),
            );
        }
    }
    releases
        .into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

#[derive(Clone, Copy)]
enum Key {
    Slug,
    Id,
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
            builder.recorded(report.seen);
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
}
