//! The media list as the daemon holds it: read into the ledger off the event loop, and a
//! publication's mail queued from the list as the file is when the release becomes public.

use std::time::Duration;

use crate::daemon::{Daemon, rfc3339, serve_on, wait_for};
use crate::smtp::{SmtpServer, project_with_smtp};
use crate::{Project, free_port, release};

/// A release dated a minute ago, about `jamstalldhet`, at `releases/ny-lista.md`.
fn write_release(p: &Project) {
    let date = rfc3339(pressroom::clock::now() - chrono::TimeDelta::minutes(1));
    p.write(
        "releases/ny-lista.md",
        release(
            &format!(
                "title = \"Efter den nya listan\"\ndate = \"{date}\"\nslug = \"ny-lista\"\ntopics = [\"jamstalldhet\"]\ncontacts = [{{ name = \"Presstjänst\", email = \"press@example.org\" }}]"
            ),
            "Jämställdhet.",
        ),
    );
}

/// The media list without Anna Lind's row, and with `added` rows.
fn without_anna(p: &Project, added: &str) {
    let media = std::fs::read_to_string(p.path().join("config/media.csv")).expect("media");
    assert!(media.contains("anna.lind@example.org"), "{media}");
    let edited: String = media
        .lines()
        .filter(|l| !l.starts_with("anna.lind@"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + added;
    p.write("config/media.csv", edited);
}

/// The addresses queued for the release at `slug`, from the ledger the daemon writes.
fn queued_for(p: &Project, slug: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        p.path().join("state/pressroom.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the ledger");
    let mut stmt = conn
        .prepare(
            "SELECT address FROM deliveries
             WHERE release_id IN (SELECT release_id FROM slugs WHERE slug = ?1) ORDER BY address",
        )
        .expect("select");
    stmt.query_map([slug], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The office takes a journalist off the media list and puts a new one on while the daemon
/// runs, and saves a release in the same moment (one debounced change): the release's mail
/// is queued for the list as edited, not as the daemon read it at start. The window stays
/// closed (Saturday or not, 7–17 weekdays is the sample's), so what is queued stays.
#[test]
fn a_media_list_edited_while_the_daemon_runs_is_what_the_next_publication_targets() {
    let p = Project::sample();
    let port = free_port();
    p.set_config(
        "listen = \"127.0.0.1:8080\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    p.set_config(
        "window = \"* * 7-17 * * Mon-Fri\"",
        "window = \"0 0 0 1 1 * 2099\"",
    );
    let daemon = Daemon::start(&p);
    wait_for(
        "the media list read at start",
        Duration::from_secs(20),
        || daemon.log().contains("media list read"),
    );

    without_anna(&p, "nils.nyman@example.org,Nils Nyman,Ny Tidning,,\n");
    write_release(&p);
    wait_for("its mail queued", Duration::from_secs(30), || {
        daemon
            .log()
            .lines()
            .any(|l| l.contains("published slug=ny-lista") && l.contains("Queued("))
    });
    // Anna (sv, every topic) is off the list; Cecilia (jamstalldhet) stays; Nils (every
    // topic, every language) is new. Bo, David and Eva take other topics or English.
    assert_eq!(
        queued_for(&p, "ny-lista"),
        ["cecilia.berg@example.org", "nils.nyman@example.org"],
        "{}",
        daemon.log()
    );
}

/// Mail queued for Anna waits (the window is closed); the office takes her off the list
/// while the daemon runs; when the window opens, the run's hand-off check reads who is
/// listed from the ledger's copy of the list, as synced after the edit: Cecilia is mailed,
/// Anna's delivery is cancelled and `report` says why.
#[test]
fn a_row_removed_while_mail_waits_is_cancelled_at_hand_off_by_the_daemon() {
    let dir = tempfile::tempdir().expect("dir");
    let smtp = free_port();
    let p = project_with_smtp(smtp, 0);
    serve_on(&p, free_port());
    let (open, closed) = ("window = \"* * * * * *\"", "window = \"0 0 0 1 1 * 2099\"");
    p.set_config(open, closed);
    let server = SmtpServer::start(dir.path(), smtp);
    write_release(&p);
    let daemon = Daemon::start(&p);
    wait_for("its mail queued", Duration::from_secs(30), || {
        daemon
            .log()
            .lines()
            .any(|l| l.contains("published slug=ny-lista") && l.contains("Queued(2)"))
    });
    without_anna(&p, "");
    wait_for("the edited list read", Duration::from_secs(10), || {
        daemon.log().matches("media list read").count() >= 2
    });
    p.set_config(closed, open);
    wait_for("Cecilia's mail", Duration::from_secs(30), || {
        !server.messages().is_empty()
    });
    let report =
        || String::from_utf8_lossy(&p.run(&["report", "ny-lista", "--csv"]).stdout).into_owned();
    wait_for("Anna's delivery cancelled", Duration::from_secs(10), || {
        report()
            .lines()
            .any(|l| l.starts_with("anna.lind@") && l.contains("no longer on the media list"))
    });
    let mailed: Vec<String> = server.per_recipient().into_keys().collect();
    assert_eq!(mailed, ["cecilia.berg@example.org"], "{}", daemon.log());
}
