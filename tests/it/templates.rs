//! Templates the press office overrides cannot stall anything (issue "The edges hold"):
//! a runaway template runs out of its budget with an error, and `check` renders the
//! templates, so what fails only at render time is found before it goes live.

use std::time::{Duration, Instant};

use chrono::SubsecRound;

use super::daemon::{Daemon, sample_served};
use super::*;

const RUNAWAY: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}";

#[test]
fn check_finds_an_include_of_a_missing_file_and_a_runaway_loop() {
    for (name, source, what) in [
        ("release.html", "{% include \"nope.html\" %}", "nope.html"),
        ("index.html", RUNAWAY, "fuel"),
        (
            "unsubscribed.html",
            "{% include \"nope.html\" %}",
            "nope.html",
        ),
    ] {
        let p = Project::sample();
        p.write(&format!("config/templates/{name}"), source);
        let started = Instant::now();
        let o = p.run(&["check"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains("templates fail to render") && err.contains(what),
            "{name}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name}: check took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_runaway_template_falls_back_to_the_built_in_ones_lifts_go_on_and_sigterm_stops_the_daemon() {
    let (p, _port) = sample_served();
    p.write("config/templates/index.html", RUNAWAY);
    let lift = pressroom::clock::now() + chrono::TimeDelta::seconds(4);
    p.write(
        "releases/lyft.md",
        release(
            &format!(
                "title = \"Lyft\"\ndate = {}",
                lift.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            "Lyfter.",
        ),
    );
    let mut daemon = Daemon::start(&p);
    let http = super::daemon::client();
    super::daemon::wait_for("the build's error", Duration::from_secs(30), || {
        let log = daemon.log();
        log.contains("ran out of fuel") && log.contains("built-in templates")
    });
    // The site is there, from the built-in templates, and the release lifts at its minute.
    super::daemon::wait_for("the lift", Duration::from_secs(20), || {
        let shown = super::daemon::get(&http, &daemon.base, "/releases/lyft/").0 == 200;
        assert!(
            !shown || pressroom::clock::now() >= lift.trunc_subsecs(0),
            "shown before its minute"
        );
        shown
    });
    // The build renames its files into place one by one: the index follows the page.
    super::daemon::wait_for("the index listing it", Duration::from_secs(5), || {
        super::daemon::get(&http, &daemon.base, "/")
            .1
            .contains("Lyft")
    });
    daemon.signal("TERM");
    let (status, took) = daemon.wait(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit {status:?} after {took:?}: {}",
        daemon.log()
    );
}
