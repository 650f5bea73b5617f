//! Putting the built site on disk so that a reader never sees a half-written file: every
//! changed file is written beside its target, the file system is synced once, and then each
//! is renamed into place. Files of an earlier build that are no longer part of the site are
//! removed; the manifest `.pressroom-manifest` says which files are ours, so nothing else in
//! the folder is ever touched. Unchanged files are not rewritten (their mtime, and so the
//! HTTP `Last-Modified`, stays put).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::render::Output;

pub const MANIFEST: &str = ".pressroom-manifest";
/// In the page folder of a release's old slug: the absolute URL of its page now. Hidden,
/// so never served itself; the HTTP server answers the old address with a redirect to it.
pub const MOVED: &str = ".moved";

/// Hashes of the files this process last wrote, by path.
pub type Memo = HashMap<String, u64, foldhash::fast::FixedState>;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Feeds (`…/feed.rss`, `.atom`, `.json`) written or removed: WebSub hubs hear of them.
    pub feeds_changed: Vec<String>,
}

/// Whether an output path is a feed.
pub fn is_feed(path: &str) -> bool {
    ["feed.rss", "feed.atom", "feed.json"]
        .iter()
        .any(|f| path == *f || path.ends_with(&format!("/{f}")))
}

#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError {
        path: path.to_path_buf(),
        source,
    }
}

/// The files listed in the manifest of `dir`.
pub fn manifest(dir: &Path) -> BTreeSet<String> {
    fs::read_to_string(dir.join(MANIFEST))
        .map(|text| {
            text.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// One build's writes in progress. Files are staged (written beside their target under a
/// hidden name) as they are rendered, from any number of threads, then `commit` syncs once,
/// renames them all into place, removes what is no longer part of the site and writes the
/// manifest.
pub struct Staging {
    dir: PathBuf,
    old: HashSet<String, foldhash::fast::FixedState>,
    made: Mutex<HashSet<PathBuf>>,
    /// Folders this build created, removed again (when empty) if it is not committed.
    created: Mutex<Vec<PathBuf>>,
}

/// One output after staging.
#[derive(Debug)]
pub struct Staged {
    path: String,
    /// (temporary file, target) when it has to be written.
    rename: Option<(PathBuf, PathBuf)>,
    /// Hash of the bytes, for the memo.
    hash: Option<u64>,
}

impl Staging {
    pub fn begin(dir: &Path) -> Result<Staging, WriteError> {
        fs::create_dir_all(dir).map_err(at(dir))?;
        Ok(Staging {
            dir: dir.to_path_buf(),
            old: manifest(dir).into_iter().collect(),
            made: Mutex::new(HashSet::new()),
            created: Mutex::new(Vec::new()),
        })
    }

    /// Whether `path` is a file of the last build, on disk and written no earlier than the
    /// file at `from` was last modified: a file made from `from` (a web-sized image) that
    /// need not be made again. The same rule as an attachment's copy (`unchanged`).
    pub fn holds_since(&self, path: &str, from: &Path) -> bool {
        let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
        self.old.contains(path)
            && matches!((modified(from), modified(&self.dir.join(path))), (Some(f), Some(t)) if f <= t)
    }

    /// Writes `output` beside its target unless the target already holds it.
    pub fn stage(&self, path: &str, output: &Output, memo: &Memo) -> Result<Staged, WriteError> {
        let target = self.dir.join(path);
        let hash = match output {
            Output::Kept => None,
            Output::Bytes(bytes) => {
                let mut h = DefaultHasher::new();
                bytes.hash(&mut h);
                Some(h.finish())
            }
            Output::Copy { .. } => None,
        };
        let unchanged = matches!(output, Output::Kept)
            || (hash.is_some() && memo.get(path) == hash.as_ref())
            || (self.old.contains(path) && unchanged(&target, output));
        if unchanged {
            return Ok(Staged {
                path: path.to_string(),
                rename: None,
                hash,
            });
        }
        if let Some(parent) = target.parent() {
            self.make_dir(parent)?;
        }
        let tmp = temp_path(&target);
        let written = match output {
            Output::Bytes(bytes) => write_file(&tmp, bytes).map_err(at(&tmp)),
            Output::Copy { from, .. } => fs::copy(from, &tmp).map(drop).map_err(at(from)),
            Output::Kept => Ok(()),
        };
        if let Err(e) = written {
            // A full disk: nothing half-written stays behind.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Staged {
            path: path.to_string(),
            rename: Some((tmp, target)),
            hash,
        })
    }

    fn make_dir(&self, dir: &Path) -> Result<(), WriteError> {
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !made.contains(dir) {
            let new: Vec<PathBuf> = dir
                .ancestors()
                .take_while(|d| !d.exists())
                .map(Path::to_path_buf)
                .collect();
            fs::create_dir_all(dir).map_err(at(dir))?;
            self.created
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .extend(new);
            made.insert(dir.to_path_buf());
        }
        Ok(())
    }

    /// Gives up a build that will not be committed: its temporary files and the folders it
    /// created go, and the site is as it was.
    pub fn abort(self, staged: Vec<Staged>) {
        self.discard(staged);
        let mut created = self
            .created
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Deepest first; a folder that is not empty (something else wrote there) stays.
        created.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in created {
            let _ = fs::remove_dir(dir);
        }
    }

    /// Throws away files staged by this build that it will not commit (a part of the site
    /// rendered again); the folders stay, for `commit` or `abort`.
    pub fn discard(&self, staged: Vec<Staged>) {
        for (tmp, _) in staged.into_iter().filter_map(|s| s.rename) {
            let _ = fs::remove_file(tmp);
        }
    }

    /// Puts every staged file in place and removes the files of the previous build that are
    /// not part of this one, except under `keep` (folders of releases that failed to parse).
    /// The site is exactly the staged paths.
    pub fn commit(
        self,
        staged: Vec<Staged>,
        keep: &[String],
        memo: &mut Memo,
    ) -> Result<Report, WriteError> {
        let result = self.commit_inner(&staged, keep, memo);
        if result.is_err() {
            // What is on disk is no longer known for sure: compare with the disk next time.
            memo.clear();
            self.abort(staged);
        }
        result
    }

    fn commit_inner(
        &self,
        staged: &[Staged],
        keep: &[String],
        memo: &mut Memo,
    ) -> Result<Report, WriteError> {
        let dir = &self.dir;
        let mut report = Report::default();
        let written = staged.iter().filter(|s| s.rename.is_some()).count();
        report.written = written;
        report.unchanged = staged.len() - written;
        if written > 0 {
            sync(dir)?;
            for s in staged {
                if let Some((tmp, target)) = &s.rename {
                    fs::rename(tmp, target).map_err(at(target))?;
                    if is_feed(&s.path) {
                        report.feeds_changed.push(s.path.clone());
                    }
                }
            }
        }
        for s in staged {
            if let Some(h) = s.hash {
                memo.insert(s.path.clone(), h);
            }
        }
        let paths: HashSet<&str, foldhash::fast::FixedState> =
            staged.iter().map(|s| s.path.as_str()).collect();
        let mut kept = Vec::new();
        let mut removed_any = false;
        for path in self.old.iter().filter(|p| !paths.contains(p.as_str())) {
            if keep.iter().any(|k| path.starts_with(k.as_str())) {
                kept.push(path.as_str());
                continue;
            }
            removed_any = true;
            let target = dir.join(path);
            memo.remove(path);
            match fs::remove_file(&target) {
                Ok(()) => {
                    report.removed += 1;
                    if is_feed(path) {
                        report.feeds_changed.push(path.clone());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(at(&target)(e)),
            }
            remove_empty_parents(dir, &target);
        }
        // Same files as before: every old one is still listed and no new one appeared.
        let unchanged_manifest = !removed_any && paths.len() + kept.len() == self.old.len();
        if !unchanged_manifest {
            let mut listed: Vec<&str> = paths.into_iter().chain(kept).collect();
            listed.sort_unstable();
            let mut manifest_text = String::with_capacity(listed.len() * 40);
            for p in &listed {
                manifest_text.push_str(p);
                manifest_text.push('\n');
            }
            let target = dir.join(MANIFEST);
            let tmp = temp_path(&target);
            if let Err(e) = write_file(&tmp, manifest_text.as_bytes()) {
                let _ = fs::remove_file(&tmp);
                return Err(at(&tmp)(e));
            }
            fs::rename(&tmp, &target).map_err(at(&target))?;
        }
        if written > 0 || report.removed > 0 || !unchanged_manifest {
            sync(dir)?;
        }
        Ok(report)
    }
}

/// Whether the file on disk already holds exactly this output.
fn unchanged(target: &Path, output: &Output) -> bool {
    let Ok(meta) = fs::metadata(target) else {
        return false;
    };
    match output {
        Output::Bytes(bytes) => {
            meta.len() == bytes.len() as u64 && fs::read(target).is_ok_and(|b| &b == bytes)
        }
        Output::Kept => true,
        Output::Copy { from, len } => {
            let newer = |m: &fs::Metadata| m.modified().ok();
            meta.len() == *len && fs::metadata(from).is_ok_and(|src| newer(&src) <= newer(&meta))
        }
    }
}

/// The temporary name beside a target: hidden, so no server or scanner picks it up.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.pressroom-tmp"))
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    Ok(())
}

/// One sync of the whole file system holding `dir`: cheaper than an fsync per file and just
/// as durable for a batch. Done before the renames (contents on disk first) and after them.
fn sync(dir: &Path) -> Result<(), WriteError> {
    let f = File::open(dir).map_err(at(dir))?;
    rustix::fs::syncfs(&f).map_err(|e| at(dir)(e.into()))
}

fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
