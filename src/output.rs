//! Putting the built site on disk so that a reader never sees a half-written file: every
//! changed file is written beside its target, the file system is synced once, and then each
//! is renamed into place. Files of an earlier build that are no longer part of the site are
//! removed; the manifest `.pressroom-manifest` says which files are ours, so nothing else in
//! the folder is ever touched. Unchanged files are not rewritten (their mtime, and so the
//! HTTP `Last-Modified`, stays put).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::render::{Output, Outputs};

pub const MANIFEST: &str = ".pressroom-manifest";

/// Hashes of the files this process last wrote, by path.
pub type Memo = HashMap<String, u64>;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
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

/// Writes `outputs` into `dir`. Files of the previous build under any of `keep` (folders
/// of releases that failed to parse this time) stay as they were.
///
/// `memo` remembers a hash of each file this process wrote, so a rebuild need not read the
/// disk to know a file is unchanged; pass an empty map for a one-off build.
pub fn write(
    dir: &Path,
    outputs: &Outputs,
    keep: &[String],
    memo: &mut Memo,
) -> Result<Report, WriteError> {
    let result = write_inner(dir, outputs, keep, memo);
    if result.is_err() {
        // What is on disk is no longer known for sure: compare with the disk next time.
        memo.clear();
    }
    result
}

fn write_inner(
    dir: &Path,
    outputs: &Outputs,
    keep: &[String],
    memo: &mut Memo,
) -> Result<Report, WriteError> {
    fs::create_dir_all(dir).map_err(at(dir))?;
    let old = manifest(dir);
    let mut report = Report::default();
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = stage(dir, outputs, &mut staged, &mut report, memo);
    if let Err(e) = result {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    if !staged.is_empty() {
        sync(dir)?;
        for (tmp, target) in &staged {
            fs::rename(tmp, target).map_err(at(target))?;
        }
    }
    let mut kept = BTreeSet::new();
    for path in old.iter().filter(|p| !outputs.contains_key(*p)) {
        if keep.iter().any(|k| path.starts_with(k.as_str())) {
            kept.insert(path.clone());
            continue;
        }
        let target = dir.join(path);
        memo.remove(path);
        match fs::remove_file(&target) {
            Ok(()) => report.removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&target)(e)),
        }
        remove_empty_parents(dir, &target);
    }
    let listed: Vec<&str> = outputs
        .keys()
        .map(String::as_str)
        .chain(kept.iter().map(String::as_str))
        .collect();
    let mut sorted = listed;
    sorted.sort_unstable();
    let manifest_text = sorted.iter().map(|p| format!("{p}\n")).collect::<String>();
    if fs::read_to_string(dir.join(MANIFEST)).ok().as_deref() != Some(manifest_text.as_str()) {
        let target = dir.join(MANIFEST);
        let tmp = temp_path(&target);
        write_file(&tmp, manifest_text.as_bytes()).map_err(at(&tmp))?;
        fs::rename(&tmp, &target).map_err(at(&target))?;
    }
    if !staged.is_empty() || report.removed > 0 {
        sync(dir)?;
    }
    Ok(report)
}

fn stage(
    dir: &Path,
    outputs: &Outputs,
    staged: &mut Vec<(PathBuf, PathBuf)>,
    report: &mut Report,
    memo: &mut Memo,
) -> Result<(), WriteError> {
    for (path, output) in outputs {
        let target = dir.join(path);
        let hash = match output {
            Output::Kept => {
                report.unchanged += 1;
                continue;
            }
            Output::Bytes(bytes) => {
                let mut h = DefaultHasher::new();
                bytes.hash(&mut h);
                Some(h.finish())
            }
            Output::Copy { .. } => None,
        };
        if hash.is_some() && memo.get(path) == hash.as_ref() {
            report.unchanged += 1;
            continue;
        }
        if let Some(h) = hash {
            memo.insert(path.clone(), h);
        }
        if unchanged(&target, output) {
            report.unchanged += 1;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(at(parent))?;
        }
        let tmp = temp_path(&target);
        match output {
            Output::Bytes(bytes) => write_file(&tmp, bytes).map_err(at(&tmp))?,
            Output::Copy { from, .. } => {
                fs::copy(from, &tmp).map_err(at(from))?;
            }
            Output::Kept => continue,
        }
        staged.push((tmp, target));
        report.written += 1;
    }
    Ok(())
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
