//! Watching `releases/` and `config/`: raw file-system events are classified by a pure
//! function into what the daemon must do (rebuild, reload the config, rescan everything)
//! and handed to the event loop, which debounces them. Editors' temp, swap and backup
//! files are ignored here as the scan ignores them; an inotify queue overflow becomes a
//! full rescan.
//!
//! The releases folder is watched folder by folder, not with one recursive watch: a
//! release is a file in it or a bundle folder one level down, and one recursive watch
//! fails whole on the first folder it cannot read (a root-owned `lost+found`), which left
//! the daemon blind. Each folder that cannot be watched is skipped, with one warning, and
//! the rest stay watched; symlinks that lead out of the releases folder are not followed,
//! as the scan refuses them. This module also says where inotify cannot be trusted (a
//! network file system, edited from other machines), for the daemon to rescan there.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::release::source;

pub use crate::core::Change;

/// The folders and files whose changes matter.
#[derive(Debug, Clone)]
pub struct Watched {
    pub releases: PathBuf,
    pub config_file: Option<PathBuf>,
    pub media: PathBuf,
    pub templates: PathBuf,
}

/// What a folder's watch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Without it changes go unseen (the releases folder, the config file's folder): the
    /// daemon rescans periodically instead.
    Essential,
    /// Without it some changes wait for a SIGHUP or another change (templates, the folder
    /// around the releases folder): a warning.
    Helpful,
}

impl Watched {
    /// The config's paths made absolute, as the watcher reports them.
    pub fn of(config: &Config) -> Watched {
        Watched {
            releases: absolute(&config.paths.releases),
            config_file: config.file.as_deref().map(absolute),
            media: absolute(&config.paths.media),
            templates: absolute(&config.paths.templates),
        }
    }

    /// The folders to watch besides those inside the releases folder (`Watcher::sync`):
    /// the releases folder itself, and the folders holding the config file, the media list
    /// and the templates. Editors replace files by renaming, so folders are watched, not
    /// files. The folder holding the releases folder is watched too (not recursively), so
    /// that the releases folder itself vanishing or coming back is seen.
    fn folders(&self) -> Vec<(PathBuf, RecursiveMode, Role)> {
        let mut folders = vec![(
            self.releases.clone(),
            RecursiveMode::NonRecursive,
            Role::Essential,
        )];
        let mut add = |p: &Path, mode, role| {
            let covered = folders
                .iter()
                .any(|(f, m, _)| p == f || (*m == RecursiveMode::Recursive && p.starts_with(f)));
            if !covered {
                folders.push((p.to_path_buf(), mode, role));
            }
        };
        if let Some(dir) = self.config_file.as_deref().and_then(Path::parent) {
            add(dir, RecursiveMode::NonRecursive, Role::Essential);
        }
        if let Some(dir) = self.media.parent() {
            add(dir, RecursiveMode::NonRecursive, Role::Essential);
        }
        add(&self.templates, RecursiveMode::Recursive, Role::Helpful);
        if let Some(dir) = self.releases.parent() {
            add(dir, RecursiveMode::NonRecursive, Role::Helpful);
        }
        folders
    }

    /// The folders inside the releases folder to watch, each with its (device, inode):
    /// every folder in it whose name the scan does not ignore, and the folder a symlink in
    /// it leads to when that is inside the releases folder too. A symlink leading out is
    /// not followed (the scan refuses it, with an error naming it). `None` if the releases
    /// folder cannot be listed (the scan reports that).
    fn inside(&self) -> Option<HashMap<PathBuf, (u64, u64)>> {
        let root = &self.releases;
        let listing = std::fs::read_dir(root).ok()?;
        let mut found = HashMap::new();
        for item in listing.filter_map(Result::ok) {
            let name = item.file_name();
            if name.to_str().is_none_or(source::is_ignored) {
                continue;
            }
            let Ok(kind) = item.file_type() else {
                continue;
            };
            let path = item.path();
            let folder = if kind.is_dir() {
                path
            } else if kind.is_symlink() {
                match std::fs::canonicalize(&path) {
                    Ok(target) if target.starts_with(root) && target != *root => target,
                    Ok(target) => {
                        tracing::debug!(
                            "not watching {}: it leads out of the releases folder (to {})",
                            path.display(),
                            target.display()
                        );
                        continue;
                    }
                    Err(_) => continue,
                }
            } else {
                continue;
            };
            if let Ok(meta) = std::fs::metadata(&folder)
                && meta.is_dir()
            {
                found.insert(folder, (meta.dev(), meta.ino()));
            }
        }
        Some(found)
    }

    /// The config file and the templates as they are now (length, modification time and
    /// inode of each, hashed): a periodic rescan reloads the config only when this changes.
    pub fn config_stamp(&self) -> u64 {
        let mut h = DefaultHasher::new();
        if let Some(file) = &self.config_file {
            stamp(file).hash(&mut h);
        }
        let mut folders = vec![self.templates.clone()];
        while let Some(folder) = folders.pop() {
            let Ok(listing) = std::fs::read_dir(&folder) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = listing.filter_map(|e| Some(e.ok()?.path())).collect();
            paths.sort();
            for path in paths {
                stamp(&path).hash(&mut h);
                if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    folders.push(path);
                }
            }
        }
        h.finish()
    }

    /// The media list as it is now, like `config_stamp`.
    pub fn media_stamp(&self) -> u64 {
        let mut h = DefaultHasher::new();
        stamp(&self.media).hash(&mut h);
        h.finish()
    }

    /// What one event of the watcher asks for. Pure: unit-tested below.
    pub fn change_of(&self, event: notify::Result<notify::Event>) -> Change {
        match event {
            // Lost events (the inotify queue overflowed): only a full rescan is safe.
            Err(_) => Change::Rescan,
            Ok(e) if e.need_rescan() => Change::Rescan,
            Ok(e) if matches!(e.kind, EventKind::Access(_)) => Change::Nothing,
            Ok(e) => e
                .paths
                .iter()
                .map(|p| self.classify(p))
                .max()
                .unwrap_or(Change::Nothing),
        }
    }

    /// What a change of `path` asks for. Pure: unit-tested below.
    pub fn classify(&self, path: &Path) -> Change {
        let ignored = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(source::is_ignored);
        if path == self.releases {
            return Change::Folder;
        }
        if path.starts_with(&self.releases) {
            // A change inside an ignored folder (`_drafts/`) or of an ignored file does
            // nothing; the folder scan skips them the same way.
            let inside = path.strip_prefix(&self.releases).unwrap_or(path);
            let hidden = inside.components().any(|c| {
                c.as_os_str()
                    .to_str()
                    .is_none_or(|n| n.starts_with('.') || n.starts_with('_'))
            });
            return if hidden || ignored {
                Change::Nothing
            } else {
                Change::Releases
            };
        }
        if ignored {
            return Change::Nothing;
        }
        if self.config_file.as_deref() == Some(path) || path.starts_with(&self.templates) {
            Change::Config
        } else if path == self.media {
            Change::Media
        } else {
            Change::Nothing
        }
    }
}

/// The releases in `folder` as the scan lists them, each with its stamp (a bundle's
/// covers its files), hashed: changes whenever a build would find something changed.
pub fn releases_stamp(folder: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    match source::scan(folder) {
        Ok((entries, diags)) => {
            for e in &entries {
                (&e.key, e.stamp).hash(&mut h);
            }
            // A file refused (too big, a symlink out) is refused until it changes too.
            diags.len().hash(&mut h);
        }
        Err(d) => d.message.hash(&mut h),
    }
    h.finish()
}

/// What tells a file's versions apart: length, modification time, inode.
fn stamp(path: &Path) -> Option<(u64, i64, i64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// `path` as the kernel names it: symlinks resolved where the path exists (the watcher
/// reports resolved paths), else made absolute.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Folders already warned about as unwatchable: each is named once, not again at every
/// rescan or new watcher. Kept by the daemon across watchers.
#[derive(Debug, Default)]
pub struct Reported(HashSet<PathBuf>);

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    watched: Watched,
    /// The folders inside the releases folder being watched, with their (device, inode):
    /// one deleted and made again is watched anew.
    inside: HashMap<PathBuf, (u64, u64)>,
    /// Why changes may go unseen: a folder they happen in (the releases folder, the config
    /// file's) could not be watched. The daemon then rescans periodically.
    blind: Option<String>,
    /// Folders inside the releases folder left unwatched because the user's inotify watches
    /// are used up (`fs.inotify.max_user_watches`); tried again at each `sync`.
    over_limit: usize,
}

/// Starts watching; every relevant change is sent, already classified, on `tx`. Fails
/// only if no watcher can be made at all (the inotify instances are used up); a folder
/// that cannot be watched is skipped, and named in `blind` if changes then go unseen.
pub fn start(
    watched: &Watched,
    tx: mpsc::UnboundedSender<Change>,
    reported: &mut Reported,
) -> notify::Result<Watcher> {
    // A folder that is not there is not watched; the folder around the releases sees it
    // come (Change::Folder), and the daemon then starts a new watcher.
    let classify = watched.clone();
    let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let change = classify.change_of(event);
        if change != Change::Nothing {
            // The loop has gone only at shutdown; nothing to do then.
            let _ = tx.send(change);
        }
    })?;
    let mut w = Watcher {
        inner,
        watched: watched.clone(),
        inside: HashMap::new(),
        blind: None,
        over_limit: 0,
    };
    for (folder, mode, role) in watched.folders() {
        if !folder.is_dir() {
            continue;
        }
        match w.inner.watch(&folder, mode) {
            Ok(()) => {
                reported.0.remove(&folder);
            }
            Err(e) if role == Role::Essential => {
                w.blind
                    .get_or_insert(format!("cannot watch {}: {e}", folder.display()));
            }
            Err(e) => {
                if reported.0.insert(folder.clone()) {
                    tracing::warn!(
                        "cannot watch {}: {e}; changes there are seen at the next SIGHUP or other change",
                        folder.display()
                    );
                }
            }
        }
    }
    w.sync(reported);
    Ok(w)
}

impl Watcher {
    /// Why changes may go unseen, for the daemon to rescan periodically: a folder they
    /// happen in could not be watched, or the inotify watch limit left bundles unwatched.
    pub fn blind(&self) -> Option<String> {
        self.blind.clone().or_else(|| {
            // Not the count: the reason stays the same sentence while folders come and go.
            (self.over_limit > 0).then(|| {
                format!(
                    "folders in {} are not watched: the inotify watch limit is reached (fs.inotify.max_user_watches)",
                    self.watched.releases.display()
                )
            })
        })
    }

    /// Watches the folders now inside the releases folder and stops watching those gone:
    /// called before each build a change in the releases folder asks for, so a bundle
    /// folder made (or moved in) is watched before it is scanned, and nothing written into
    /// it afterwards is missed. A folder that cannot be watched is skipped with one warning
    /// naming it; one the scan cannot read either is named by the scan instead (`check`
    /// too), so the log says it once.
    pub fn sync(&mut self, reported: &mut Reported) {
        let Some(present) = self.watched.inside() else {
            return;
        };
        let inner = &mut self.inner;
        self.inside.retain(|folder, id| {
            let keep = present.get(folder) == Some(id);
            if !keep {
                // Already gone with its folder, most often; nothing to undo then.
                let _ = inner.unwatch(folder);
            }
            keep
        });
        self.over_limit = 0;
        for (folder, id) in present {
            if self.inside.contains_key(&folder) {
                continue;
            }
            if self.over_limit > 0 {
                // Past the limit every other watch fails the same way: counted, not tried.
                self.over_limit += 1;
                continue;
            }
            match self.inner.watch(&folder, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    reported.0.remove(&folder);
                    self.inside.insert(folder, id);
                }
                // One sentence for all of them (`blind`), not a warning per folder: the
                // daemon rescans instead.
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    self.over_limit = 1;
                }
                Err(e) => {
                    if !reported.0.insert(folder.clone()) {
                        continue;
                    }
                    if source::reports_unreadable(&folder) {
                        tracing::debug!("not watching {}: {e}", folder.display());
                    } else {
                        tracing::warn!(
                            "cannot watch {}: {e}; changes inside it are seen at the next change of the releases folder",
                            folder.display()
                        );
                    }
                }
            }
        }
    }
}

/// Why the folders are rescanned periodically (a label on `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Because {
    /// A folder whose changes matter could not be watched, or no watcher could be made.
    WatchingFailed,
    /// The releases or config folder is on a network file system.
    NetworkFileSystem,
    /// `[watch] rescan` names an interval.
    Configured,
}

impl Because {
    pub const ALL: [Because; 3] = [
        Because::WatchingFailed,
        Because::NetworkFileSystem,
        Because::Configured,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Because::WatchingFailed => "watching_failed",
            Because::NetworkFileSystem => "network_file_system",
            Because::Configured => "configured",
        }
    }
}

/// A network file system's name, from `statfs`'s `f_type`: where inotify sees only the
/// changes made through this machine, not those made on the server or another client.
/// FUSE counts (sshfs, rclone and the like are its common use for a shared folder). Pure.
pub fn network_file_system(f_type: u64) -> Option<&'static str> {
    match f_type {
        0x6969 => Some("NFS"),
        0x517B => Some("SMB"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x6573_5546 => Some("FUSE"),
        // 9P: WSL 2's Windows drives, some virtual machines' shared folders.
        0x0102_1997 => Some("9P"),
        _ => None,
    }
}

/// Which of the watched folders is on a network file system, as a sentence; `None` if
/// none (or `statfs` cannot tell).
pub fn on_network(watched: &Watched) -> Option<String> {
    let config_dir = watched.config_file.as_deref().and_then(Path::parent);
    [Some(watched.releases.as_path()), config_dir]
        .into_iter()
        .flatten()
        .find_map(|folder| {
            let fs = rustix::fs::statfs(folder).ok()?;
            // f_type is a signed word on some targets: its low 32 bits are the magic.
            let magic = u64::from(fs.f_type as u32);
            let name = network_file_system(magic)?;
            Some(format!(
                "{} is on a network file system ({name})",
                folder.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched() -> Watched {
        Watched {
            releases: "/site/releases".into(),
            config_file: Some("/site/config/pressroom.toml".into()),
            media: "/site/config/media.csv".into(),
            templates: "/site/config/templates".into(),
        }
    }

    #[test]
    fn releases_and_their_attachments_rebuild() {
        let w = watched();
        for p in [
            "/site/releases/2018-10-18-du-avgor.md",
            "/site/releases/bundle/index.md",
            "/site/releases/bundle/photo.jpg",
            "/site/releases/bundle",
        ] {
            assert_eq!(w.classify(Path::new(p)), Change::Releases, "{p}");
        }
        assert_eq!(w.classify(Path::new("/site/releases")), Change::Folder);
        assert_eq!(w.classify(Path::new("/site/public")), Change::Nothing);
    }

    #[test]
    fn the_folder_around_the_releases_is_watched_but_not_its_subfolders() {
        let w = watched();
        assert_eq!(
            w.folders(),
            [
                (
                    "/site/releases".into(),
                    RecursiveMode::NonRecursive,
                    Role::Essential
                ),
                (
                    "/site/config".into(),
                    RecursiveMode::NonRecursive,
                    Role::Essential
                ),
                (
                    "/site/config/templates".into(),
                    RecursiveMode::Recursive,
                    Role::Helpful
                ),
                ("/site".into(), RecursiveMode::NonRecursive, Role::Helpful),
            ]
        );
    }

    #[test]
    fn the_folders_inside_watched_are_bundles_and_links_that_stay_inside() {
        let site = tempfile::tempdir().expect("dir");
        let releases = site.path().join("releases");
        for folder in ["bundle/images", "_drafts", ".git", "2018/older"] {
            std::fs::create_dir_all(releases.join(folder)).expect("mkdir");
        }
        std::fs::create_dir_all(site.path().join("elsewhere")).expect("mkdir");
        std::fs::write(releases.join("x.md"), "+++").expect("write");
        let link = |to: &Path, name: &str| std::os::unix::fs::symlink(to, releases.join(name));
        link(&releases.join("2018/older"), "latest").expect("a link inside");
        link(&site.path().join("elsewhere"), "out").expect("a link out");
        link(&releases, "loop").expect("a link to the folder itself");
        let w = Watched {
            releases: releases.canonicalize().expect("canonical"),
            config_file: None,
            media: site.path().join("config/media.csv"),
            templates: site.path().join("config/templates"),
        };
        let mut inside: Vec<PathBuf> = w.inside().expect("listed").into_keys().collect();
        inside.sort();
        let root = &w.releases;
        assert_eq!(
            inside,
            [
                root.join("2018"),
                root.join("2018/older"),
                root.join("bundle")
            ],
            "not a bundle's own folders, ignored names, a link out or the folder itself"
        );
    }

    #[test]
    fn network_file_systems_are_told_by_their_magic() {
        for (magic, name) in [
            (0x6969, "NFS"),
            (0x517B, "SMB"),
            (0xFF53_4D42, "CIFS"),
            (0xFE53_4D42, "SMB2"),
            (0x6573_5546, "FUSE"),
            (0x0102_1997, "9P"),
        ] {
            assert_eq!(network_file_system(magic), Some(name), "{magic:x}");
        }
        // ext4, xfs, btrfs, tmpfs, overlayfs: local, inotify sees every change.
        for magic in [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x794C_7630] {
            assert_eq!(network_file_system(magic), None, "{magic:x}");
        }
    }

    #[test]
    fn editor_temp_swap_and_backup_files_are_ignored() {
        let w = watched();
        for p in [
            "/site/releases/.2018-10-18-du-avgor.md.swp",
            "/site/releases/2018-10-18-du-avgor.md~",
            "/site/releases/2018-10-18-du-avgor.md.tmp",
            "/site/releases/.#2018-10-18-du-avgor.md",
            "/site/releases/_drafts/x.md",
            "/site/releases/4913",
            "/site/config/.pressroom.toml.swp",
        ] {
            let c = w.classify(Path::new(p));
            assert!(c <= Change::Releases, "{p}: {c:?}");
            if p.contains(".sw") || p.ends_with('~') || p.contains("_drafts") || p.contains("#") {
                assert_eq!(c, Change::Nothing, "{p}");
            }
        }
    }

    #[test]
    fn a_queue_overflow_or_a_watcher_error_is_a_full_rescan() {
        let w = watched();
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(w.change_of(Ok(overflow)), Change::Rescan);
        assert_eq!(
            w.change_of(Err(notify::Error::generic("inotify failed"))),
            Change::Rescan
        );
        let save = notify::Event::new(EventKind::Create(notify::event::CreateKind::File))
            .add_path("/site/releases/.x.md.swp".into())
            .add_path("/site/config/pressroom.toml".into());
        assert_eq!(
            w.change_of(Ok(save)),
            Change::Config,
            "the biggest change wins"
        );
    }

    #[test]
    fn config_templates_and_media_list_are_told_apart() {
        let w = watched();
        assert_eq!(
            w.classify(Path::new("/site/config/pressroom.toml")),
            Change::Config
        );
        assert_eq!(
            w.classify(Path::new("/site/config/templates/release.html")),
            Change::Config
        );
        assert_eq!(
            w.classify(Path::new("/site/config/media.csv")),
            Change::Media
        );
        assert_eq!(
            w.classify(Path::new("/site/config/notes.txt")),
            Change::Nothing
        );
    }
}
