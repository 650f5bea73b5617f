//! Who a release is for, as the press office sees it: `check` refuses a language that does
//! not exist and warns about a country code written for one; `send --dry-run` names every
//! row left out and why; `schedule` counts them per reason.

use super::*;

/// The diagnostic lines of `err` about `file` at `line`.
fn at<'a>(err: &'a str, file: &str, line: usize) -> Vec<&'a str> {
    let place = format!("{file}:{line}:");
    err.lines().filter(|l| l.contains(&place)).collect()
}

#[test]
fn check_refuses_a_language_not_in_the_registry_at_its_column_and_warns_about_a_country_code() {
    let p = Project::sample();
    p.set_media(&[
        "anna.lind@example.org,Anna Lind,Dagbladet Exempel,sv-SE,",
        "bo.ek@example.com,Bo Ek,Radio Exempel,swedish,",
        "cecilia.berg@example.org,Cecilia Berg,Tidningen Exempel,se,",
        "david.holm@example.com,David Holm,Example News,dk,",
    ]);
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(at(&err, "media.csv", 2).is_empty(), "sv-SE is fine: {err}");
    assert_eq!(
        at(&err, "media.csv", 3),
        [format!(
            "{}:3:39: `swedish`: not a language in the IANA Language Subtag Registry (a language tag like sv or en)",
            p.path().join("config/media.csv").display()
        )],
        "{err}"
    );
    assert_eq!(
        at(&err, "media.csv", 4),
        [format!(
            "{}:4:57: warning: `se` is the code of a language at home in NO, not the country code SE: for the site's language write `sv`",
            p.path().join("config/media.csv").display()
        )],
        "{err}"
    );
    assert!(
        at(&err, "media.csv", 5)
            .iter()
            .any(|l| l.ends_with(":5:48: `dk`: not a language in the IANA Language Subtag Registry: DK is a country code (a language tag like sv or en)")),
        "{err}"
    );
    assert!(err.contains("2 recipients: 2 errors, 1 warning"), "{err}");

    // A warning alone is not an error: `check` passes, and Northern Sami readers are real.
    p.set_media(&["cecilia.berg@example.org,Cecilia Berg,Tidningen Exempel,se,"]);
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: `se` is the code of a language"),
        "{err}"
    );
}

#[test]
fn a_release_or_a_site_in_swedish_is_refused_at_its_line_a_release_in_se_is_warned_about() {
    let p = Project::sample();
    let front = |lang: &str| {
        format!("title = \"Ny\"\ndate = 2018-10-18\nlang = \"{lang}\"\ntopics = [\"jamstalldhet\"]")
    };
    let path = p.write("releases/ny.md", release(&front("swedish"), "Text."));
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        at(&err, "ny.md", 4),
        [format!(
            "{}:4:8: `swedish`: not a language in the IANA Language Subtag Registry (a BCP 47 language tag like sv or en-GB)",
            path.display()
        )],
        "{err}"
    );

    p.write("releases/ny.md", release(&front("se"), "Text."));
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        at(&err, "ny.md", 4).iter().any(|l| l.ends_with(
            ":4:8: warning: `se` is the code of a language at home in NO, not the country code SE: for the site's language write `sv`"
        )),
        "{err}"
    );

    p.write("releases/ny.md", release(&front("sv-SE"), "Text."));
    p.set_config("lang = \"sv\"", "lang = \"swedish\"");
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.lines().any(|l| l.contains("pressroom.toml:")
            && l.contains("`swedish`: not a language in the IANA Language Subtag Registry")),
        "{err}"
    );
}

/// The media list of the dry-run and schedule tests: two readers, then one row for each
/// reason a row is left out (an opt-out and an earlier send are the ledger's), then two
/// rows that are not valid.
const ROWS: &[&str] = &[
    "anna.lind@example.org,Anna Lind,Dagbladet Exempel,sv,",
    "bo.ek@example.com,Bo Ek,Radio Exempel,sv-SE,prostitution",
    "cecilia.berg@example.org,Cecilia Berg,Tidningen Exempel,en,",
    "david.holm@example.com,David Holm,Example News,,sport|ekonomi",
    "eva.strand@example.org,Eva Strand,Exempelbyrån,,",
    "fredrik.ahl@example.com,Fredrik Ahl,Exempelposten,sv,",
    "not-an-address,Gustav,Exempeltv,sv,",
    "helga.berg@example.org,Helga Berg,Exempelradio,swedish,",
];

#[test]
fn a_dry_run_lists_each_row_left_out_with_its_reason_and_writes_nothing() {
    let p = Project::sample();
    // Fredrik has been mailed the release already; Eva unsubscribed.
    p.set_media(&[ROWS[5]]);
    let o = p.run(&["send", "du-avgor"]);
    assert!(stderr(&o).contains("1 sent"), "{}", stderr(&o));
    assert!(
        p.run(&["unsubscribe", "eva.strand@example.org"])
            .status
            .success()
    );
    p.set_media(ROWS);
    let state = p.path().join("state");
    let before = files(&state);

    let o = p.run(&["send", "du-avgor", "--dry-run"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let mailed: Vec<&str> = lines
        .iter()
        .filter(|l| l[1] == "queued")
        .map(|l| l[0])
        .collect();
    assert_eq!(
        mailed,
        ["anna.lind@example.org", "bo.ek@example.com"],
        "sv-SE reads sv: {out}"
    );
    let excluded: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l[1] == "excluded")
        .map(|l| (l[0], l[2]))
        .collect();
    assert_eq!(
        excluded,
        [
            (
                "cecilia.berg@example.org",
                "language does not match: reads en, the release is in sv"
            ),
            (
                "david.holm@example.com",
                "topics do not match: takes sport, ekonomi; the release is about Prostitution, Människohandel, Jämställdhet"
            ),
            ("eva.strand@example.org", "opted out"),
            ("fredrik.ahl@example.com", "already mailed (sent)"),
        ],
        "{out}"
    );
    let invalid: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l[1] == "invalid")
        .map(|l| (l[0], l[2]))
        .collect();
    let media_csv = p.path().join("config/media.csv");
    assert_eq!(invalid.len(), 2, "{out}");
    assert_eq!(
        invalid[0].0,
        format!("{}:8:1", media_csv.display()),
        "{out}"
    );
    assert!(
        invalid[0]
            .1
            .starts_with("`not-an-address` is not an email address"),
        "{out}"
    );
    assert_eq!(
        invalid[1].0,
        format!("{}:9:48", media_csv.display()),
        "{out}"
    );
    assert!(
        invalid[1]
            .1
            .starts_with("`swedish`: not a language in the IANA Language Subtag Registry"),
        "{out}"
    );
    assert!(
        err.contains("2 would be mailed (dry run: nothing sent); excluded: 1 opted out, 1 topics do not match, 1 language does not match, 1 already mailed, 2 invalid rows"),
        "{err}"
    );
    assert_same_files(&files(&state), &before, "after the dry run");
}

#[test]
fn schedule_counts_who_each_dispatch_reaches_and_who_it_leaves_out_per_reason() {
    let p = Project::sample();
    p.set_media(&ROWS[..7]);
    assert!(
        p.run(&["unsubscribe", "eva.strand@example.org"])
            .status
            .success()
    );
    let o = p.run(&[
        "schedule",
        "--from",
        "2018-10-17T20:00",
        "--until",
        "2018-10-19T00:00",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    let mail: Vec<&str> = out.lines().filter(|l| l.contains(" mail ")).collect();
    assert_eq!(
        mail,
        [
            "2018-10-18 07:00 CEST  mail     du-avgor  to 3 recipients; excluded: 1 opted out, 1 topics do not match, 1 language does not match, 1 invalid row"
        ],
        "{out}"
    );
}
