//! Templates the press office overrides cannot stall anything (issue "The edges hold"):
//! a runaway template runs out of its budget with an error, and `check` renders the
//! templates, so what fails only at render time is found before it goes live.

use std::time::{Duration, Instant};

use super::daemon::{Daemon, sample_served};
use super::*;

const RUNAWAY: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}";

#[test]
fn check_finds_an_include_of_a_missing_file_and_a_runaway_loop() {
    for (name, source, what) in [
        ("release.html", "{% include \"nope.html\" %}", "nope.html"),
        ("index.html", RUNAWAY, "fuel"),
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
fn a_runaway_template_fails_its_build_and_sigterm_still_stops_the_daemon() {
    let (p, _port) = sample_served();
    p.write("config/templates/index.html", RUNAWAY);
    let mut daemon = Daemon::start(&p);
    super::daemon::wait_for("the build's error", Duration::from_secs(30), || {
        daemon.log().contains("ran out of fuel")
    });
    daemon.signal("TERM");
    let (status, took) = daemon.wait(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit {status:?} after {took:?}: {}",
        daemon.log()
    );
}
