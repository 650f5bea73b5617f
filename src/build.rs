//! The build: releases folder + config + instant → files in the output folder. `Builder`
//! keeps what it parsed and rendered, so after one file changes only that release is
//! parsed and rendered again; the listings (index, feeds, sitemap) are always redone,
//! being cheap. A release that fails to parse keeps its last good version in a
//! long-running builder, and its files on disk in any case.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::diagnostic::{Diagnostic, SourceText};
use crate::ledger::{Ledger, LedgerError};
use crate::output::{self, Memo};
use crate::planner::{self, Plan, Visibility};
use crate::release::{self, Release, Slug, revision, source};
use crate::render::{self, Output, Templates};

/// A parse result, remembered with the stamp of the file it came from.
struct Cached {
    stamp: u64,
    release: Option<Release>,
    diags: Vec<Diagnostic>,
}

pub struct Builder {
    config: Config,
    templates: Templates,
    template_diags: Vec<Diagnostic>,
    parsed: HashMap<PathBuf, Cached>,
    last_good: HashMap<PathBuf, Release>,
    /// Fingerprint of each release page as last written, by page path.
    pages: HashMap<String, u64>,
    memo: Memo,
    out_dir: PathBuf,
    ledger: Option<(Ledger, Recording)>,
}

/// Whether a build writes what it sees into the ledger. A build for the real now does; a
/// what-if build `--at` another instant only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    Record,
    ReadOnly,
}

/// Every release known at a moment, and every problem found while reading them.
pub struct Loaded {
    pub releases: Vec<Release>,
    pub diags: Vec<Diagnostic>,
    /// Page folders (`releases/<slug>/`) of releases that failed to parse.
    pub broken: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct BuildReport {
    pub public: usize,
    pub withdrawn: usize,
    pub write: output::Report,
    pub diags: Vec<Diagnostic>,
    pub elapsed: std::time::Duration,
}

impl BuildReport {
    pub fn errors(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }
}

impl Builder {
    pub fn new(config: Config, out_dir: PathBuf) -> Builder {
        let (templates, template_diags) = Templates::load(&config.paths.templates);
        Builder {
            config,
            templates,
            template_diags,
            parsed: HashMap::new(),
            last_good: HashMap::new(),
            pages: HashMap::new(),
            memo: Memo::new(),
            out_dir,
            ledger: None,
        }
    }

    /// Tracks corrections in the ledger: a public release whose content changes gets an
    /// `updated` instant.
    pub fn with_ledger(mut self, ledger: Ledger, recording: Recording) -> Builder {
        self.ledger = Some((ledger, recording));
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Scans the releases folder, parsing only files that changed since the last call.
    pub fn load(&mut self) -> Loaded {
        let (entries, mut diags) = source::scan(&self.config.paths.releases);
        let stale: Vec<&source::Entry> = entries
            .iter()
            .filter(|e| self.parsed.get(&e.path).is_none_or(|c| c.stamp != e.stamp))
            .collect();
        let fresh = parse_all(&stale, &self.config);
        for (entry, cached) in stale.iter().zip(fresh) {
            self.parsed.insert(entry.path.clone(), cached);
        }
        self.parsed
            .retain(|path, _| entries.iter().any(|e| &e.path == path));
        self.last_good
            .retain(|path, _| entries.iter().any(|e| &e.path == path));

        let mut releases = Vec::new();
        let mut broken = Vec::new();
        for entry in &entries {
            let Some(cached) = self.parsed.get(&entry.path) else {
                continue;
            };
            diags.extend(cached.diags.iter().cloned());
            match &cached.release {
                Some(r) => {
                    self.last_good.insert(entry.path.clone(), r.clone());
                    releases.push(r.clone());
                }
                None => {
                    // Keep serving what was good until the file is fixed.
                    if let Some(good) = self.last_good.get(&entry.path) {
                        broken.push(good.path());
                        releases.push(good.clone());
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
        }
    }

    /// Builds the site as of `at` into the output folder.
    pub fn build(&mut self, at: DateTime<Utc>) -> Result<BuildReport, BuildError> {
        let started = Instant::now();
        let mut loaded = self.load();
        self.apply_revisions(&mut loaded.releases, at)?;
        let plan = planner::plan(&loaded.releases, at);
        let outputs = self.render(&plan)?;
        let write = output::write(&self.out_dir, &outputs, &loaded.broken, &mut self.memo)?;
        // Only now is it certain that the pages on disk are those fingerprinted.
        self.pages.retain(|path, _| outputs.contains_key(path));
        Ok(BuildReport {
            public: plan.public.len(),
            withdrawn: plan.withdrawn.len(),
            write,
            diags: loaded.diags,
            elapsed: started.elapsed(),
        })
    }

    /// Sets `updated` on releases corrected after publication, recording new sightings.
    fn apply_revisions(
        &mut self,
        releases: &mut [Release],
        at: DateTime<Utc>,
    ) -> Result<(), BuildError> {
        let Some((ledger, recording)) = &mut self.ledger else {
            return Ok(());
        };
        let records = ledger.revisions()?;
        let mut changed = Vec::new();
        for r in releases.iter_mut() {
            if !matches!(
                planner::visibility(r, at),
                Visibility::Public | Visibility::Withdrawn { .. }
            ) {
                continue;
            }
            let hash = revision::content_hash(r);
            let record = records.get(&r.id);
            let (next, shown) = revision::observe(record, &hash, at);
            if record != Some(&next) {
                changed.push((r.id.clone(), next));
            }
            r.updated = r.updated.max(shown);
        }
        if *recording == Recording::Record {
            ledger.save_revisions(&changed)?;
        }
        Ok(())
    }

    fn render(&mut self, plan: &Plan<'_>) -> Result<BTreeMap<String, Output>, BuildError> {
        let mut outputs = render::listings(&self.config, &self.templates, plan)?;
        let withdrawn: Vec<&Release> = plan.withdrawn.clone();
        for r in plan.public.iter().chain(withdrawn.iter()) {
            let page = format!("{}index.html", r.path());
            let print = fingerprint(r);
            let output = if self.pages.get(&page) == Some(&print) && self.memo.contains_key(&page) {
                Output::Kept
            } else {
                let bytes = render::release_page(&self.config, &self.templates, r)?;
                self.pages.insert(page.clone(), print);
                Output::Bytes(bytes)
            };
            outputs.insert(page, output);
            if r.withdrawn.is_none() {
                outputs.extend(render::release_files(r));
            }
        }
        Ok(outputs)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error("cannot write the site: {0}")]
    Write(#[from] output::WriteError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn fingerprint(release: &Release) -> u64 {
    let mut h = DefaultHasher::new();
    release.hash(&mut h);
    h.finish()
}

/// Reads and parses entries, on every core: parsing and sanitising dominate a cold build.
fn parse_all(entries: &[&source::Entry], config: &Config) -> Vec<Cached> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = entries.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|e| parse_one(e, config))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn parse_one(entry: &source::Entry, config: &Config) -> Cached {
    match source::read(entry) {
        Ok(file) => {
            let parsed = release::parse(&file, &config.site);
            Cached {
                stamp: entry.stamp,
                release: parsed.release,
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

/// Two releases may not share a slug or an id: the one published first keeps it.
fn reject_duplicates(mut releases: Vec<Release>, diags: &mut Vec<Diagnostic>) -> Vec<Release> {
    releases.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.source.cmp(&b.source)));
    let mut slugs: HashMap<Slug, PathBuf> = HashMap::new();
    let mut ids: HashMap<String, PathBuf> = HashMap::new();
    releases.retain(|r| {
        let clash = if let Some(first) = slugs.get(&r.slug) {
            Some(format!(
                "the slug `{}` is already used by {}",
                r.slug,
                first.display()
            ))
        } else {
            ids.get(&r.id)
                .map(|first| format!("the id `{}` is already used by {}", r.id, first.display()))
        };
        if let Some(message) = clash {
            diags.push(
                SourceText::whole(&r.source, "")
                    .error(0..0, message)
                    .expected("a unique slug: rename the file or set `slug`"),
            );
            return false;
        }
        slugs.insert(r.slug.clone(), r.source.clone());
        ids.insert(r.id.clone(), r.source.clone());
        true
    });
    releases.sort_by(|a, b| a.source.cmp(&b.source));
    releases
}
