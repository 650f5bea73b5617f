//! Watching `releases/` and `config/`: raw file-system events are classified by a pure
//! function into what the daemon must do (rebuild, reload the config, rescan everything)
//! and handed to the event loop, which debounces them. Editors' temp, swap and backup
//! files are ignored here as the scan ignores them; an inotify queue overflow becomes a
//! full rescan.

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

    /// The folders to watch: the releases folder (recursively: bundles), and the folders
    /// holding the config file, the media list and the templates. Editors replace files by
    /// renaming, so folders are watched, not files. The folder holding the releases folder
    /// is watched too (not recursively), so that the releases folder itself vanishing or
    /// coming back is seen.
    fn folders(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut folders = vec![(self.releases.clone(), RecursiveMode::Recursive)];
        let mut add = |p: &Path, mode| {
            let covered = folders
                .iter()
                .any(|(f, m)| p == f || (*m == RecursiveMode::Recursive && p.starts_with(f)));
            if !covered {
                folders.push((p.to_path_buf(), mode));
            }
        };
        if let Some(dir) = self.config_file.as_deref().and_then(Path::parent) {
            add(dir, RecursiveMode::NonRecursive);
        }
        if let Some(dir) = self.media.parent() {
            add(dir, RecursiveMode::NonRecursive);
        }
        add(&self.templates, RecursiveMode::Recursive);
        if let Some(dir) = self.releases.parent() {
            add(dir, RecursiveMode::NonRecursive);
        }
        folders
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

/// `path` as the kernel names it: symlinks resolved where the path exists (the watcher
/// reports resolved paths), else made absolute.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
}

/// Starts watching; every relevant change is sent, already classified, on `tx`.
pub fn start(watched: &Watched, tx: mpsc::UnboundedSender<Change>) -> notify::Result<Watcher> {
    // A folder that is not there is not watched; the folder around the releases sees it
    // come (Change::Folder), and the daemon then starts a new watcher.
    let classify = watched.clone();
    let mut inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let change = classify.change_of(event);
        if change != Change::Nothing {
            // The loop has gone only at shutdown; nothing to do then.
            let _ = tx.send(change);
        }
    })?;
    for (folder, mode) in watched.folders() {
        if folder.is_dir() {
            inner.watch(&folder, mode)?;
        }
    }
    Ok(Watcher { _inner: inner })
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
                ("/site/releases".into(), RecursiveMode::Recursive),
                ("/site/config".into(), RecursiveMode::NonRecursive),
                ("/site/config/templates".into(), RecursiveMode::Recursive),
                ("/site".into(), RecursiveMode::NonRecursive),
            ]
        );
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
