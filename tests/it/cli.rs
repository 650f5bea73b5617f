//! The command line as a press officer uses it: releases named by the file `new` printed,
//! `report` with its totals and piped into `head`, `new` in the site's language.

use std::process::Stdio;

use super::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn preview_send_and_report_take_the_file_name_as_well_as_the_slug() {
    let p = Project::sample();
    for named in [
        "2018-10-18-du-avgor",
        "2018-10-18-du-avgor.md",
        "releases/2018-10-18-du-avgor.md",
        "du-avgor",
    ] {
        let o = p.run(&["preview", named, "--text"]);
        assert!(o.status.success(), "{named}: {}", stderr(&o));
        assert!(stdout(&o).contains(SAMPLE_SENTENCES[0]), "{named}");
    }
    let o = p.run(&["preview", "2018-10-18-du-avgör"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no release has the slug or file name `2018-10-18-du-avgör`"),
        "{}",
        stderr(&o)
    );

    let o = p.run(&["send", "releases/2018-10-18-du-avgor.md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = p.run(&["report", "2018-10-18-du-avgor.md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("anna.lind@example.org"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn report_ends_with_its_totals_and_stops_quietly_when_its_reader_goes() {
    let p = Project::sample();
    let o = p.run(&["send", "du-avgor"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = p.run(&["report", "du-avgor"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.ends_with("\n\noriginal: 3 messages: 3 sent\n"),
        "anna, bo and cecilia take the sample: {out}"
    );
    let o = p.run(&["report", "du-avgor", "--csv"]);
    assert_eq!(stdout(&o).lines().count(), 4, "a header and three rows");
    assert_eq!(stderr(&o), "original: 3 messages: 3 sent\n");

    // `pressroom report du-avgor | head -1` after head has gone: a pipe whose reading end
    // is closed before pressroom writes a byte.
    for args in [
        &["report", "du-avgor"][..],
        &["report", "du-avgor", "--csv"],
        &["schedule", "--from", "2018-10-17T00:00"],
    ] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_pressroom"))
            .arg("--config")
            .arg(p.path().join("config/pressroom.toml"))
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("run pressroom");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn new_writes_the_release_in_the_sites_language_with_its_date_and_topics() {
    let p = Project::sample();
    let o = p.run(&[
        "new",
        "Ny rapport om löner",
        "--date",
        "2026-01-15",
        "--topics",
        "Jämställdhet, Miljö",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let path = stdout(&o).trim().to_string();
    assert!(
        path.ends_with("releases/2026-01-15-ny-rapport-om-loner.md"),
        "{path}"
    );
    let text = std::fs::read_to_string(&path).expect("the new file");
    assert!(text.contains("\ndate = 2026-01-15\n"), "{text}");
    assert!(
        text.contains("\ntopics = [\"Jämställdhet\", \"Miljö\"]\n"),
        "{text}"
    );
    assert!(
        text.contains("\n# Ta bort raden när pressmeddelandet är klart"),
        "{text}"
    );
    assert!(!text.contains("Remove this line"), "{text}");
    let o = p.run(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = p.run(&["new", "X", "--topics", "?!"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--topics: the topic name `?!`"),
        "{}",
        stderr(&o)
    );
    let o = p.run(&["new", "X", "--date", "i morgon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--date i morgon"), "{}", stderr(&o));
}
