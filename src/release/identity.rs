//! Which release a file is, across edits and renames (SPEC §4, "Release identity and
//! edits"). A release without an explicit `id` gets one from its first day and slug when
//! it is first seen; the ledger then pins that id to its file, so a new date, title, body
//! or slug keeps it. A file that takes the place of one that vanished within `GRACE`, with
//! the same title or the same text, is that release (a rename); a file that has its own
//! `id` is only ever itself. Pure: the ledger stores the pins this decides.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Keys, Release};

/// How long a vanished release may come back as itself under another name (or as a file
/// that was deleted and written again). The daemon waits as long before it cancels a
/// deleted release's mail: within the grace a vanished release is the same release, after
/// it the release is gone and its waiting mail with it.
pub const GRACE: TimeDelta = TimeDelta::seconds(5);

/// What the ledger remembers of the release a file in the releases folder holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub id: String,
    pub title: String,
    /// `Release::text_hash`: the body as written.
    pub text: String,
    /// When a recorded build first found the file missing; `None` while it is there.
    pub gone_at: Option<DateTime<Utc>>,
}

/// Every pin, by the file's name in the releases folder (`x.md`, or a bundle folder `x`).
pub type Pins = HashMap<String, Pin>;

/// A change to the pins, for the ledger to record with the build that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinChange {
    Set { file: String, pin: Pin },
    Remove { file: String },
}

/// Applies `changes` to `pins`, as the ledger does when it records them.
pub fn apply(pins: &mut Pins, changes: &[PinChange]) {
    for change in changes {
        match change {
            PinChange::Set { file, pin } => {
                pins.insert(file.clone(), pin.clone());
            }
            PinChange::Remove { file } => {
                pins.remove(file);
            }
        }
    }
}

/// The name in the releases folder `dir` of the file a release came from.
pub fn file_key(dir: &Path, source: &Path) -> Option<String> {
    key_of(dir, source).map(str::to_string)
}

fn key_of<'a>(dir: &Path, source: &'a Path) -> Option<&'a str> {
    source
        .strip_prefix(dir)
        .ok()?
        .components()
        .next()?
        .as_os_str()
        .to_str()
}

/// Gives every release without an explicit `id` the id its file is pinned to, or the id of
/// the release it replaces, or a new one; returns the pins to record. `releases` come from
/// the folder `dir` as read at `now`. Runs at every build: with every file pinned already
/// (the daemon's steady state) it allocates nothing per release.
pub fn resolve(
    releases: &mut [Arc<Release>],
    dir: &Path,
    pins: &Pins,
    now: DateTime<Utc>,
) -> Vec<PinChange> {
    let mut changes = Vec::new();
    // The id each release is to have, where it differs from the one it has.
    let mut ids: Vec<Option<String>> = vec![None; releases.len()];
    {
        let keys: Vec<Option<&str>> = releases.iter().map(|r| key_of(dir, &r.source)).collect();
        let present: HashSet<&str> = keys.iter().flatten().copied().collect();
        // Ids taken: explicit ones, those kept by their files, and new ones.
        let mut taken: HashSet<&str> = releases
            .iter()
            .filter(|r| r.explicit_id)
            .map(|r| r.id.as_str())
            .collect();
        let mut fresh: HashSet<String> = HashSet::new();
        let mut unpinned = Vec::new();
        for (i, r) in releases.iter().enumerate() {
            let Some(key) = keys[i] else { continue };
            if r.explicit_id {
                continue;
            }
            let kept = pins.get(key).filter(|pin| {
                let back_in_time = pin.gone_at.is_none_or(|gone| now - gone <= GRACE);
                (back_in_time || alike(pin, r)) && !taken.contains(pin.id.as_str())
            });
            let Some(pin) = kept else {
                unpinned.push(i);
                continue;
            };
            taken.insert(&pin.id);
            if r.id != pin.id {
                ids[i] = Some(pin.id.clone());
            }
            if pin.gone_at.is_some() || pin.title != r.title || pin.text != r.text_hash {
                changes.push(PinChange::Set {
                    file: key.to_string(),
                    pin: pin_of(r, &pin.id),
                });
            }
        }

        // Files that vanished: each may come back under another name within the grace.
        let mut vanished: Vec<(&String, &Pin, DateTime<Utc>)> = Vec::new();
        for (file, pin) in pins {
            if present.contains(file.as_str()) {
                continue;
            }
            let gone = match pin.gone_at {
                Some(gone) => gone,
                None => {
                    changes.push(PinChange::Set {
                        file: file.clone(),
                        pin: Pin {
                            gone_at: Some(now),
                            ..pin.clone()
                        },
                    });
                    now
                }
            };
            if now - gone <= GRACE && !taken.contains(pin.id.as_str()) {
                vanished.push((file, pin, gone));
            }
        }
        // The most recently vanished first, then by name: the same answer on every build.
        vanished.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(b.0)));

        if !unpinned.is_empty() {
            let all_pinned: HashSet<&str> = pins.values().map(|p| p.id.as_str()).collect();
            unpinned.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
            for i in unpinned {
                let r = &releases[i];
                let Some(key) = keys[i] else { continue };
                let replaced = vanished
                    .iter()
                    .position(|(_, pin, _)| !taken.contains(pin.id.as_str()) && alike(pin, r));
                let id = match replaced {
                    Some(at) => {
                        let (old, pin, _) = vanished.remove(at);
                        changes.push(PinChange::Remove { file: old.clone() });
                        taken.insert(&pin.id);
                        pin.id.clone()
                    }
                    None => {
                        // A new release. Its default id may belong to a release that is
                        // gone (the same slug on the same day): it gets one of its own.
                        let mut id = r.id.clone();
                        let mut n = 2;
                        while taken.contains(id.as_str())
                            || fresh.contains(&id)
                            || all_pinned.contains(id.as_str())
                        {
                            id = format!("{}-{n}", r.id);
                            n += 1;
                        }
                        fresh.insert(id.clone());
                        id
                    }
                };
                changes.push(PinChange::Set {
                    file: key.to_string(),
                    pin: pin_of(r, &id),
                });
                if r.id != id {
                    ids[i] = Some(id);
                }
            }
        }
    }

    for (r, id) in releases.iter_mut().zip(ids) {
        if let Some(id) = id {
            let r = Arc::make_mut(r);
            r.id = id;
            r.keys = Keys::of(r);
        }
    }
    changes
}

/// The same title, or the same (non-empty) text.
fn alike(pin: &Pin, r: &Release) -> bool {
    pin.title == r.title || (!pin.text.is_empty() && pin.text == r.text_hash)
}

fn pin_of(r: &Release, id: &str) -> Pin {
    Pin {
        id: id.to_string(),
        title: r.title.clone(),
        text: r.text_hash.clone(),
        gone_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::fixture as release;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A release in file `releases/<file>` with this title and text.
    fn at(file: &str, slug: &str, title: &str, text: &str) -> Arc<Release> {
        let mut r = release(slug, "2018-10-18T06:00:00Z");
        r.source = format!("releases/{file}").into();
        r.title = title.into();
        r.text_hash = text.into();
        Arc::new(r)
    }

    fn pins_after(releases: &mut [Arc<Release>], pins: &mut Pins, now: &str) {
        let changes = resolve(releases, Path::new("releases"), pins, t(now));
        apply(pins, &changes);
    }

    #[test]
    fn a_file_keeps_the_id_it_was_first_seen_with_through_a_new_date_title_and_slug() {
        let mut pins = Pins::new();
        let mut first = [at("a.md", "a", "Title", "text")];
        pins_after(&mut first, &mut pins, "2018-10-18T06:00:00Z");
        let id = first[0].id.clone();
        let mut edited = [at("a.md", "b", "Another title", "other text")];
        edited[0] = Arc::new(Release {
            id: "tag:example.org,2018-10-19:b".into(),
            ..(*edited[0]).clone()
        });
        pins_after(&mut edited, &mut pins, "2018-10-19T06:00:00Z");
        assert_eq!(edited[0].id, id);
    }

    #[test]
    fn a_renamed_file_with_the_same_title_or_text_is_the_same_release_within_the_grace() {
        for (title, text) in [("Title", "changed"), ("Changed", "text")] {
            let mut pins = Pins::new();
            let mut first = [at("a.md", "a", "Title", "text")];
            pins_after(&mut first, &mut pins, "2018-10-18T06:00:00Z");
            // Renamed in one step: both seen by the same build.
            let mut renamed = [at("b.md", "b", title, text)];
            pins_after(&mut renamed, &mut pins, "2018-10-18T07:00:00Z");
            assert_eq!(renamed[0].id, first[0].id, "{title} / {text}");
            assert!(!pins.contains_key("a.md"), "the old name's pin moves");
            // Deleted, then written under another name 5 s later.
            let mut gone: [Arc<Release>; 0] = [];
            pins_after(&mut gone, &mut pins, "2018-10-18T08:00:00Z");
            let mut back = [at("c.md", "c", title, text)];
            pins_after(&mut back, &mut pins, "2018-10-18T08:00:05Z");
            assert_eq!(back[0].id, first[0].id);
        }
    }

    #[test]
    fn after_the_grace_or_with_nothing_in_common_it_is_a_new_release() {
        let mut pins = Pins::new();
        let mut first = [at("a.md", "a", "Title", "text")];
        pins_after(&mut first, &mut pins, "2018-10-18T06:00:00Z");
        let mut gone: [Arc<Release>; 0] = [];
        pins_after(&mut gone, &mut pins, "2018-10-18T08:00:00Z");
        let mut late = [at("b.md", "a", "Title", "text")];
        pins_after(&mut late, &mut pins, "2018-10-18T08:00:06Z");
        assert_ne!(late[0].id, first[0].id, "one second after the grace");
        assert_eq!(late[0].id, format!("{}-2", first[0].id), "its own id");

        let mut pins = Pins::new();
        pins_after(
            &mut [at("a.md", "a", "Title", "text")],
            &mut pins,
            "2018-10-18T06:00:00Z",
        );
        let mut other = [at("b.md", "b", "Other", "other")];
        pins_after(&mut other, &mut pins, "2018-10-18T06:00:01Z");
        assert_ne!(other[0].id, first[0].id);
    }

    #[test]
    fn a_release_with_its_own_id_never_takes_another_identity() {
        let mut pins = Pins::new();
        let mut first = [at("a.md", "a", "Title", "text")];
        pins_after(&mut first, &mut pins, "2018-10-18T06:00:00Z");
        let mut own = at("b.md", "b", "Title", "text");
        Arc::make_mut(&mut own).explicit_id = true;
        Arc::make_mut(&mut own).id = "tag:example.org,2018:own".into();
        let mut renamed = [own];
        pins_after(&mut renamed, &mut pins, "2018-10-18T06:00:01Z");
        assert_eq!(renamed[0].id, "tag:example.org,2018:own");
    }

    #[test]
    fn the_same_name_written_again_long_after_is_itself_only_with_the_same_title_or_text() {
        let mut pins = Pins::new();
        let mut first = [at("a.md", "a", "Title", "text")];
        pins_after(&mut first, &mut pins, "2018-10-18T06:00:00Z");
        let mut gone: [Arc<Release>; 0] = [];
        pins_after(&mut gone, &mut pins, "2018-10-18T07:00:00Z");
        let mut restored = [at("a.md", "a", "Title", "text")];
        pins_after(&mut restored, &mut pins, "2018-10-19T07:00:00Z");
        assert_eq!(restored[0].id, first[0].id, "a file restored from a backup");

        pins_after(&mut gone, &mut pins, "2018-10-20T07:00:00Z");
        let mut reused = [at("a.md", "a", "New", "new")];
        pins_after(&mut reused, &mut pins, "2018-10-21T07:00:00Z");
        assert_ne!(reused[0].id, first[0].id, "a new release under an old name");
    }

    #[test]
    fn an_empty_text_says_nothing_of_which_release_it_is() {
        let mut pins = Pins::new();
        let mut first = [at("a.md", "a", "A", "")];
        pins_after(&mut first, &mut pins, "2018-10-18T06:00:00Z");
        // Deleted, and another release with no text either written at once.
        let mut other = [at("b.md", "b", "B", "")];
        pins_after(&mut other, &mut pins, "2018-10-18T06:00:01Z");
        assert_ne!(other[0].id, first[0].id);
    }
}
