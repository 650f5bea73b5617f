//! A long-lived `Builder` re-renders only what changed; after any sequence of edits its
//! output must be exactly what a fresh build of the same files gives.

use pressroom::build::Builder;
use pressroom::config::Config;

use super::*;

fn config(p: &Project) -> Config {
    Config::load(Some(&p.path().join("config/pressroom.toml")))
        .expect("config")
        .0
}

fn fresh(p: &Project, at: chrono::DateTime<chrono::Utc>) -> BTreeMap<String, Vec<u8>> {
    let dir = p.path().join("fresh");
    let _ = std::fs::remove_dir_all(&dir);
    Builder::new(config(p), dir.clone())
        .build(at)
        .expect("fresh build");
    files(&dir)
}

#[test]
fn after_every_edit_the_kept_site_equals_a_fresh_build() {
    let p = Project::sample();
    let at: chrono::DateTime<chrono::Utc> = "2021-01-01T00:00:00Z".parse().expect("instant");
    let mut live = Builder::new(config(&p), p.out());
    let r = |n: u32, topic: &str| {
        release(
            &format!("title = \"Nummer {n}\"\ndate = 2020-0{n}-01\ntopics = [\"{topic}\"]"),
            &format!("Text nummer {n}."),
        )
    };
    let steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {}),
        Box::new(|| drop(p.write("releases/2020-01-01-ett.md", r(1, "ekonomi")))),
        Box::new(|| drop(p.write("releases/2020-02-01-tva.md", r(2, "ekonomi")))),
        // An edit of the body only.
        Box::new(|| {
            drop(p.write(
                "releases/2020-02-01-tva.md",
                r(2, "ekonomi").replace("Text", "Ny text"),
            ))
        }),
        // A topic that vanishes...
        Box::new(|| {
            drop(std::fs::remove_file(
                p.path().join("releases/2020-01-01-ett.md"),
            ))
        }),
        Box::new(|| drop(p.write("releases/2020-02-01-tva.md", r(2, "sport")))),
        // ...and comes back with the same content as before.
        Box::new(|| {
            drop(p.write(
                "releases/2020-02-01-tva.md",
                r(2, "ekonomi").replace("Text", "Ny text"),
            ))
        }),
        // Broken, then fixed.
        Box::new(|| drop(p.write("releases/2020-02-01-tva.md", "+++\ntitle = "))),
        Box::new(|| drop(p.write("releases/2020-02-01-tva.md", r(2, "ekonomi")))),
        Box::new(|| {
            drop(p.write(
                "releases/2020-03-01-tre.md",
                r(3, "ekonomi").replace(
                    "date = 2020-03-01",
                    "date = 2020-03-01\nwithdrawn = \"Fel\"",
                ),
            ))
        }),
    ];
    for (i, step) in steps.iter().enumerate() {
        step();
        live.build(at).expect("live build");
        let kept = files(&p.out());
        let want = fresh(&p, at);
        if i == 7 {
            // A broken file keeps its last good page while the fresh build has none.
            assert!(kept.contains_key("releases/tva/index.html"));
            continue;
        }
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "step {i}"
        );
        for (path, bytes) in &want {
            assert!(
                kept[path] == *bytes,
                "step {i}: {path} differs from a fresh build"
            );
        }
    }
}

#[test]
fn a_rebuild_after_one_edit_rewrites_only_what_shows_it() {
    let p = Project::sample();
    for n in 1..=30 {
        p.write(
            &format!(
                "releases/2019-{:02}-{:02}-nr-{n}.md",
                n % 12 + 1,
                n % 28 + 1
            ),
            release(
                &format!(
                    "title = \"Nummer {n}\"\ndate = 2019-{:02}-{:02}\ntopics = [\"t{}\"]",
                    n % 12 + 1,
                    n % 28 + 1,
                    n % 5
                ),
                "Text.",
            ),
        );
    }
    let at: chrono::DateTime<chrono::Utc> = "2021-01-01T00:00:00Z".parse().expect("instant");
    let mut live = Builder::new(config(&p), p.out());
    let first = live.build(at).expect("build");
    assert_eq!(first.write.unchanged, 0);
    let again = live.build(at).expect("build");
    assert_eq!(again.write.written, 0, "nothing changed, nothing written");

    p.write(
        "releases/2019-02-02-nr-1.md",
        release(
            "title = \"Nummer 1, rättad\"\ndate = 2019-02-02\ntopics = [\"t1\"]",
            "Text.",
        ),
    );
    let edit = live.build(at).expect("build");
    // Its page; the index, main, topic and language feeds and pages (they show it); its
    // year's archive; the sitemap is always written anew but unchanged on disk here.
    assert!(
        edit.write.written <= 1 + 1 + 3 + 1 + 3 + 1 + 3 + 1,
        "{:?}",
        edit.write
    );
    assert!(edit.write.written >= 5, "{:?}", edit.write);
}
