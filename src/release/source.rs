//! Finding release files in `releases/` and reading them safely: editor and copy-tool
//! leftovers are skipped, and symlinks out of the folder, huge files and binary files are
//! refused with a message instead of being read.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::diagnostic::Diagnostic;

/// The largest release text read (the Markdown file itself, not its attachments).
pub const MAX_TEXT_BYTES: u64 = 1024 * 1024;
/// The largest attachment published.
pub const MAX_ATTACHMENT_BYTES: u64 = 200 * 1024 * 1024;

/// One release found on disk, not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The Markdown file (`releases/x.md` or `releases/x/index.md`).
    pub path: PathBuf,
    /// `<name>`: the file name without `.md`, or the bundle's folder name.
    pub name: String,
    /// The name in the releases folder (`x.md` or the bundle folder `x`): unique.
    pub key: String,
    /// The bundle folder, for a bundle.
    pub bundle: Option<PathBuf>,
    /// Changes whenever the file or any file of its bundle changes.
    pub stamp: u64,
}

/// A file inside a bundle, other than `index.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    pub name: String,
    pub path: PathBuf,
    pub len: u64,
}

/// A release file read into memory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub entry: Entry,
    pub text: String,
    /// The bundle's files, if it is a bundle.
    pub files: Option<Vec<BundleFile>>,
}

/// Names that editors and copy tools write beside real files.
pub fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.starts_with('_')
        || ["~", ".swp", ".swx", ".tmp", ".part", ".crdownload"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// Lists the releases in `dir`, sorted by path. Unusable entries become diagnostics; a
/// folder that cannot be read at all is an error of its own (`Err`): that is not a folder
/// with no releases, and nothing may be unpublished because of it.
pub fn scan(dir: &Path) -> Result<(Vec<Entry>, Vec<Diagnostic>), Diagnostic> {
    let mut entries = Vec::new();
    let mut diags = Vec::new();
    let unreadable =
        |e: std::io::Error| Diagnostic::file(dir, format!("cannot read the releases folder: {e}"));
    let root = dir.canonicalize().map_err(unreadable)?;
    let listing = fs::read_dir(dir).map_err(unreadable)?;
    let mut items: Vec<(std::ffi::OsString, fs::DirEntry)> = listing
        .filter_map(Result::ok)
        .map(|e| (e.file_name(), e))
        .collect();
    items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // One stat per entry: on every core, as it dominates a rebuild of a large folder.
    let parts = crate::cores::split(&items, |part| examine(dir, &root, part));
    for (e, d) in parts {
        entries.extend(e);
        diags.extend(d);
    }
    Ok((entries, diags))
}

/// Turns listed names into entries (one stat each), in order.
fn examine(
    dir: &Path,
    root: &Path,
    items: &[(std::ffi::OsString, fs::DirEntry)],
) -> (Vec<Entry>, Vec<Diagnostic>) {
    let mut entries = Vec::with_capacity(items.len());
    let mut diags = Vec::new();
    for (os_name, item) in items {
        let Some(name) = os_name.to_str() else {
            let path = dir.join(os_name);
            diags.push(
                Diagnostic::file(&path, "the file name is not UTF-8").expected("a UTF-8 file name"),
            );
            continue;
        };
        let symlink = item.file_type().is_ok_and(|t| t.is_symlink());
        match examine_one(dir, root, name, symlink, || item.metadata()) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(d) => diags.push(d),
        }
    }
    (entries, diags)
}

/// One name in the releases folder: its entry, `None` if it is not a release (an ignored
/// name, another kind of file, a folder without `index.md`).
fn examine_one(
    dir: &Path,
    root: &Path,
    name: &str,
    symlink: bool,
    metadata: impl FnOnce() -> std::io::Result<fs::Metadata>,
) -> Result<Option<Entry>, Diagnostic> {
    if is_ignored(name) {
        return Ok(None);
    }
    let path = dir.join(name);
    // The listing already says whether it is a symlink: only those need resolving.
    let meta = if symlink {
        inside(root, &path)?
    } else {
        metadata().map_err(|e| Diagnostic::file(&path, format!("cannot read: {e}")))?
    };
    if meta.is_dir() {
        let index = path.join("index.md");
        match fs::metadata(&index) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
            // A folder we may not look into (most often a root-owned `lost+found` at a
            // mount's root) may hold a release: say so, as a warning, since it is not a
            // broken release and `check` must not fail on every ext4 mount root.
            Err(e) => return Err(unreadable_folder(&path, &e)),
        }
        let stamp = bundle_stamp(root, &path)?;
        Ok(Some(Entry {
            path: index,
            name: name.to_string(),
            key: name.to_string(),
            bundle: Some(path),
            stamp,
        }))
    } else if let Some(stem) = name.strip_suffix(".md") {
        Ok(Some(Entry {
            key: name.to_string(),
            stamp: stamp_of(&meta, name),
            path,
            name: stem.to_string(),
            bundle: None,
        }))
    } else {
        Ok(None)
    }
}

/// A folder in the releases folder that cannot be looked into: a warning naming it.
fn unreadable_folder(path: &Path, e: &std::io::Error) -> Diagnostic {
    let why = match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    Diagnostic::file(
        path,
        format!("cannot be read ({why}); its releases are not published"),
    )
    .warning()
}

/// Whether the scan reports `folder` (in the releases folder) as unreadable: it cannot
/// tell whether the folder holds a release.
pub fn reports_unreadable(folder: &Path) -> bool {
    fs::metadata(folder.join("index.md")).is_err_and(|e| {
        !matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        )
    })
}

/// The entry `key` (a name in `dir`) as `scan` would list it now; `None` if it is gone or
/// not a release.
pub fn entry(dir: &Path, key: &str) -> Result<Option<Entry>, Diagnostic> {
    let path = dir.join(key);
    let symlink = match fs::symlink_metadata(&path) {
        Ok(meta) => meta.file_type().is_symlink(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Diagnostic::file(&path, format!("cannot read: {e}"))),
    };
    let root = dir
        .canonicalize()
        .map_err(|e| Diagnostic::file(dir, format!("cannot read the releases folder: {e}")))?;
    examine_one(dir, &root, key, symlink, || fs::metadata(&path))
}

/// Reads one entry: the text and, for a bundle, its file list.
pub fn read(entry: &Entry) -> Result<SourceFile, Diagnostic> {
    let path = &entry.path;
    let meta =
        fs::metadata(path).map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(Diagnostic::file(path, "is not a regular file"));
    }
    if meta.len() > MAX_TEXT_BYTES {
        return Err(Diagnostic::file(
            path,
            format!("is {} bytes, too big for a release", meta.len()),
        )
        .expected(format!(
            "at most {MAX_TEXT_BYTES} bytes of Markdown; large files go in a bundle as attachments"
        )));
    }
    let bytes = fs::read(path).map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?;
    if bytes.contains(&0) {
        return Err(Diagnostic::file(path, "is a binary file, not text").expected("UTF-8 Markdown"));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
        let line = valid.matches('\n').count() + 1;
        let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let mut d = Diagnostic::file(path, "is not valid UTF-8 text").expected("UTF-8 Markdown");
        d.line = line;
        d.col = col;
        d
    })?;
    let files = match &entry.bundle {
        Some(dir) => Some(bundle_files(dir)?),
        None => None,
    };
    Ok(SourceFile {
        entry: entry.clone(),
        text,
        files,
    })
}

/// The metadata of `path`, refusing a symlink that leads out of `root`.
fn inside(root: &Path, path: &Path) -> Result<fs::Metadata, Diagnostic> {
    let link = fs::symlink_metadata(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?;
    if link.file_type().is_symlink() {
        let target = path
            .canonicalize()
            .map_err(|e| Diagnostic::file(path, format!("is a broken symlink: {e}")))?;
        if !target.starts_with(root) {
            return Err(Diagnostic::file(
                path,
                format!(
                    "is a symlink leading out of the releases folder (to {})",
                    target.display()
                ),
            )
            .expected("a file inside the releases folder"));
        }
    }
    fs::metadata(path).map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))
}

fn stamp_of(meta: &fs::Metadata, name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    meta.len().hash(&mut h);
    meta.modified()
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .hash(&mut h);
    h.finish()
}

fn bundle_stamp(root: &Path, dir: &Path) -> Result<u64, Diagnostic> {
    let mut h = DefaultHasher::new();
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| Diagnostic::file(dir, format!("cannot read the bundle: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if let Ok(meta) = inside(root, &path) {
            stamp_of(&meta, &name.to_string_lossy()).hash(&mut h);
        }
    }
    Ok(h.finish())
}

/// The publishable files of a bundle, each checked like a release file.
fn bundle_files(dir: &Path) -> Result<Vec<BundleFile>, Diagnostic> {
    let root = dir
        .canonicalize()
        .map_err(|e| Diagnostic::file(dir, format!("cannot read the bundle: {e}")))?;
    let mut files = Vec::new();
    let listing = fs::read_dir(dir)
        .map_err(|e| Diagnostic::file(dir, format!("cannot read the bundle: {e}")))?;
    for item in listing.filter_map(Result::ok) {
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if name == "index.md" || is_ignored(&name) {
            continue;
        }
        let path = dir.join(&name);
        // A refused file is simply not offered; naming it in `attachments` reports why.
        let Ok(meta) = inside(&root, &path) else {
            continue;
        };
        if meta.is_file() {
            files.push(BundleFile {
                name,
                path,
                len: meta.len(),
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_leftovers_are_ignored() {
        for name in [
            ".x.md.swp",
            "_draft.md",
            "x.md~",
            "x.md.tmp",
            "x.md.part",
            ".#x.md",
        ] {
            assert!(is_ignored(name), "{name}");
        }
        assert!(!is_ignored("2018-10-18-du-avgor.md"));
    }
}
