//! The build: the catalog's releases + config + instant → files in the output folder.
//! `Builder` keeps what it rendered, so after one file changes only that release is
//! rendered again (the catalog parses only that file), and only the listings that show it;
//! the rest of the site is left as written. A release that fails to parse keeps its last
//! good version in a long-running builder, and its files on disk in any case. What the
//! build saw of published releases (`sightings`) is handed back for the ledger to record.

mod sightings;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};

pub use crate::catalog::Loaded;
use crate::catalog::{self, Catalog};
use crate::config::Config;
use crate::core::Presence;
use crate::diagnostic::Diagnostic;
use crate::ledger::{History, Seen};
use crate::output::{self, Memo, Staged, Staging};
use crate::planner::{self, Plan, Visibility};
use crate::release::{self, Release};
use crate::render::{self, Map, Output, Templates};
use sightings::{Observed, Revisions};

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

    /// The pins a failed build decided, for the ledger to record all the same (what
    /// became public is left to the build that can write the site). Empty for a builder
    /// that does not record.
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

    /// What a build saw is now in the ledger: later builds build on it.
    pub fn recorded(&mut self, seen: Seen) {
        self.catalog.pinned(&seen.pins);
        if let Some(revisions) = &mut self.revisions {
            revisions.recorded(seen);
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
        Presence::of(self.release(id).as_deref(), self.seen_since(id), hold, now)
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
        let started = Instant::now();
        let mut loaded = self.load(at);
        if let Some(unreadable) = loaded.unreadable {
            return Err(BuildError::Unreadable(unreadable));
        }
        let pins = std::mem::take(&mut loaded.pins);
        self.unrecorded_pins.clone_from(&pins);

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
            Some(revisions) => revisions.deleted(&loaded.releases, &self.config, at),
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
        // Only a site that is on disk counts as seen: a build that could not write it
        // (a full disk) reports nothing to record, so the next one sees the same
        // publications, and their mail is still decided.
        let recording = self
            .revisions
            .as_ref()
            .is_some_and(|r| r.recording == Recording::Record);
        self.unrecorded_pins.clear();
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
            newly_public,
            seen,
            withdrawn_releases,
        })
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
