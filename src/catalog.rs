//! The releases folder as the rest of the program sees it: a scan, a parse cache keyed by
//! each file's stamp (so after one file changes only that one is parsed again), the last
//! good version of every file, and texts read again from their files when they were let
//! go of. The build renders from it; `send`, `preview`, `status` and `schedule` find
//! releases in it; a mail run reads a release's text through it. Each release carries the
//! id the ledger pinned to its file (`release::identity`), so a re-dated or renamed release
//! is found under the id it was published with.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, Site};
use crate::diagnostic::{Diagnostic, SourceText};
use crate::release::identity::{self, PinChange, Pins};
use crate::release::{self, Release, Slug, source};
use crate::render::Map;
use chrono::{DateTime, Utc};

/// A parse result, remembered with the stamp of the file it came from.
struct Cached {
    stamp: u64,
    release: Option<Arc<Release>>,
    diags: Vec<Diagnostic>,
}

pub struct Catalog {
    dir: PathBuf,
    site: Site,
    /// By `Entry::key`, the name in the releases folder.
    parsed: Map<String, Cached>,
    /// A release that fails to parse keeps its last good version here.
    last_good: Map<String, Arc<Release>>,
    /// The ids the ledger pinned to files, as last recorded.
    pins: Pins,
    /// Releases are given the ids pinned to their files (there is a ledger to pin them);
    /// without one, each file's own id is its release's.
    identified: bool,
}

/// A release file that does not parse (or cannot be read) now.
#[derive(Debug, Clone)]
pub struct Failing {
    pub file: PathBuf,
    /// Its page folder (`releases/<slug>/`), from its last good version or its file name.
    pub page: Option<String>,
    /// The version last read from it, which stands in for it among the releases.
    pub last_good: Option<Arc<Release>>,
}

/// Every release known at a moment, and every problem found while reading them.
pub struct Loaded {
    pub releases: Vec<Arc<Release>>,
    pub diags: Vec<Diagnostic>,
    /// Page folders (`releases/<slug>/`) of releases that failed to parse.
    pub broken: Vec<String>,
    /// The pins the ledger is to record for the ids given (a recorded build records them).
    pub pins: Vec<PinChange>,
    /// Every file that failed to parse (or to be read), with the last good version that
    /// stands in for it in `releases`, if this catalog ever read one.
    pub failing: Vec<Failing>,
    /// The releases folder could not be read at all: the releases are those last loaded.
    pub unreadable: Option<Diagnostic>,
}

impl Catalog {
    pub fn new(config: &Config) -> Catalog {
        Catalog {
            dir: config.paths.releases.clone(),
            site: config.site.clone(),
            parsed: Map::default(),
            last_good: Map::default(),
            pins: Pins::default(),
            identified: false,
        }
    }

    /// Scans the releases folder once, each release under the id the ledger pinned to it:
    /// for the commands that look a release up in the ledger (`send`, `status`, …).
    pub fn scan_pinned(config: &Config, pins: Pins, now: DateTime<Utc>) -> Loaded {
        let mut catalog = Catalog::new(config);
        catalog.set_pins(pins);
        catalog.load(now)
    }

    /// The ids the ledger has pinned to files.
    pub fn set_pins(&mut self, pins: Pins) {
        self.pins = pins;
        self.identified = true;
    }

    /// The ledger recorded these pins: later loads build on them.
    pub fn pinned(&mut self, changes: &[PinChange]) {
        identity::apply(&mut self.pins, changes);
    }

    /// The releases as last loaded (a broken file counts as its last good version).
    pub fn releases(&self) -> impl Iterator<Item = &Arc<Release>> {
        self.last_good.values()
    }

    /// Scans the releases folder, parsing only files that changed since the last call.
    /// `now` is when: a file gone longer than `identity::GRACE` is not taken over by another.
    pub fn load(&mut self, now: DateTime<Utc>) -> Loaded {
        let (entries, mut diags) = match source::scan(&self.dir) {
            Ok(found) => found,
            Err(unreadable) => {
                // Nothing is known of the folder now (unmounted, permissions): the releases
                // stay as last loaded, and `build` writes nothing.
                let mut releases: Vec<Arc<Release>> = self.last_good.values().cloned().collect();
                releases.sort_by(|a, b| a.source.cmp(&b.source));
                return Loaded {
                    releases,
                    diags: vec![unreadable.clone()],
                    broken: Vec::new(),
                    pins: Vec::new(),
                    failing: Vec::new(),
                    unreadable: Some(unreadable),
                };
            }
        };

        let stale: Vec<&source::Entry> = entries
            .iter()
            .filter(|e| self.parsed.get(&e.key).is_none_or(|c| c.stamp != e.stamp))
            .collect();
        // Files neither read before by this catalog nor pinned by the ledger: against one
        // read before, a new file that copies its slug or its id is the one held.
        let new: HashSet<String> = stale
            .iter()
            .filter(|e| !self.parsed.contains_key(&e.key) && !self.pins.contains_key(&e.key))
            .map(|e| e.key.clone())
            .collect();
        let fresh = parse_all(&stale, &self.site);
        for (entry, cached) in stale.iter().zip(fresh) {
            if let Some(r) = &cached.release {
                self.last_good.insert(entry.key.clone(), Arc::clone(r));
            }
            self.parsed.insert(entry.key.clone(), cached);
        }
        if self.parsed.len() > entries.len() {
            let present: HashSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
            self.parsed.retain(|key, _| present.contains(key.as_str()));
            self.last_good
                .retain(|key, _| present.contains(key.as_str()));
        }

        let mut releases = Vec::with_capacity(entries.len());
        let mut broken = Vec::new();
        let mut failing = Vec::new();
        for entry in &entries {
            let Some(cached) = self.parsed.get(&entry.key) else {
                continue;
            };
            diags.extend(cached.diags.iter().cloned());
            match &cached.release {
                Some(r) => releases.push(Arc::clone(r)),
                None => {
                    // Keep serving what was good until the file is fixed; the builder
                    // holds it back instead if it was not public yet (fail closed).
                    let last_good = self.last_good.get(&entry.key).cloned();
                    let page = match &last_good {
                        Some(good) => Some(good.path()),
                        None => Slug::parse(Slug::from_file_name(&entry.name))
                            .ok()
                            .map(|slug| format!("releases/{slug}/")),
                    };
                    if let Some(good) = &last_good {
                        releases.push(Arc::clone(good));
                    }
                    broken.extend(page.clone());
                    failing.push(Failing {
                        file: entry.path.clone(),
                        page,
                        last_good,
                    });
                }
            }
        }

        let before = releases.clone();
        let mut pins = Vec::new();
        if self.identified {
            pins = identity::resolve(&mut releases, &self.dir, &self.pins, now);
        }
        let mut releases = reject_duplicates(releases, &self.dir, &new, &mut diags);
        if self.identified && releases.len() < before.len() {
            // A file held as a copy of another is pinned to nothing: once the original is
            // gone (a copy, then a delete: a rename by hand) it takes its place.
            let kept: HashSet<PathBuf> = releases.iter().map(|r| r.source.clone()).collect();
            releases = before
                .iter()
                .filter(|r| kept.contains(&r.source))
                .cloned()
                .collect();
            pins = identity::resolve(&mut releases, &self.dir, &self.pins, now);
        }
        self.adopt(&releases, &before);
        // A broken file's stand-in is the release as listed: under its pinned id.
        for f in &mut failing {
            if let Some(good) = &mut f.last_good
                && let Some(listed) = releases.iter().find(|r| r.source == good.source)
            {
                *good = Arc::clone(listed);
            }
        }
        Loaded {
            releases,
            diags,
            broken,
            pins,
            failing,
            unreadable: None,
        }
    }

    /// Keeps the ids `identity::resolve` gave in the cache, so `releases()` and the next
    /// load hand out each release under its pinned id.
    fn adopt(&mut self, releases: &[Arc<Release>], before: &[Arc<Release>]) {
        // Most builds change no id: only a release not as it was read is looked at.
        let read: HashSet<*const Release> = before.iter().map(Arc::as_ptr).collect();
        for r in releases.iter().filter(|r| !read.contains(&Arc::as_ptr(r))) {
            let Some(key) = identity::file_key(&self.dir, &r.source) else {
                continue;
            };
            if let Some(cached) = self.parsed.get_mut(&key)
                && let Some(c) = &cached.release
                && c.source == r.source
                && c.content_hash == r.content_hash
                && c.id != r.id
            {
                cached.release = Some(Arc::clone(r));
            }
            if let Some(good) = self.last_good.get_mut(&key)
                && good.source == r.source
                && good.content_hash == r.content_hash
                && good.id != r.id
            {
                *good = Arc::clone(r);
            }
        }
    }

    /// Makes the next `load` parse the file of `source` again, whatever its stamp says.
    pub fn forget(&mut self, source: &Path) {
        for cached in self.parsed.values_mut() {
            if cached.release.as_ref().is_some_and(|r| r.source == source) {
                cached.stamp = 0;
            }
        }
    }

    /// Keeps in memory the text of the releases `keep` names, taking it from `texts` (read
    /// again by the build) where it was let go of; the others' is let go of, and read from
    /// the file again when a page or a mail needs it (`with_text`). A release whose file no
    /// longer parses keeps its last good version as it is (its text, if still held, stays:
    /// it could not be read again).
    pub fn settle(
        &mut self,
        keep: impl Fn(&Release) -> bool,
        texts: &Map<PathBuf, Arc<release::Body>>,
    ) {
        let Catalog {
            parsed, last_good, ..
        } = self;
        for (key, cached) in parsed.iter_mut() {
            let Some(r) = &cached.release else {
                continue;
            };
            let settled = match (keep(r), &r.body) {
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
}

/// The release with this slug, or an error that names the nearest one.
pub fn find<'a>(releases: &'a [Arc<Release>], slug: &str) -> Result<&'a Arc<Release>, String> {
    if let Some(r) = releases.iter().find(|r| r.slug.as_str() == slug) {
        return Ok(r);
    }
    let known: Vec<&str> = releases.iter().map(|r| r.slug.as_str()).collect();
    let hint = crate::schema::did_you_mean(slug, &known)
        .map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"));
    Err(format!("no release has the slug `{slug}`{hint}"))
}

/// `r` with its text, read again from its file if the catalog let go of it. An error if
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
        // Without an explicit `id` the file gives its default id, not the one pinned to it.
        .filter(|f| {
            f.explicit_id == r.explicit_id
                && (!f.explicit_id || f.id == r.id)
                && f.content_hash == r.content_hash
        })
        .ok_or_else(changed)?;
    Ok(Arc::new(Release {
        body: fresh.body,
        ..(**r).clone()
    }))
}

/// Reads and parses entries, on every core: parsing and sanitising dominate a cold build.
fn parse_all(entries: &[&source::Entry], site: &Site) -> Vec<Cached> {
    crate::cores::split(entries, |part| {
        part.iter().map(|e| parse_one(e, site)).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

fn parse_one(entry: &source::Entry, site: &Site) -> Cached {
    match source::read(entry) {
        Ok(file) => {
            let parsed = release::parse(&file, site);
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

/// Two releases may not share a slug or an id: a file read before keeps it against a new
/// one (a copy never takes a live page), then the one published first, then the first by
/// path; the others are held, refused with an error. The order of `releases` is kept.
fn reject_duplicates(
    releases: Vec<Arc<Release>>,
    dir: &Path,
    new_files: &HashSet<String>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Arc<Release>> {
    let new =
        |r: &Release| identity::file_key(dir, &r.source).is_none_or(|key| new_files.contains(&key));
    let first = |a: &Release, b: &Release| {
        (new(a), a.date, a.source.as_os_str()) < (new(b), b.date, b.source.as_os_str())
    };
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
                    .expected(match key {
                        Key::Slug => "a unique slug: rename the file or set `slug`",
                        Key::Id => "a unique id: remove `id` from the copy, or give it its own",
                    }),
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
