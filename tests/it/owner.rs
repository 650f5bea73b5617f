//! The ledger's one owner, as a real daemon with a real SMTP server: opt-outs arriving by
//! the thousand (and from the command line) while a large dispatch leaves, a config that
//! moves the ledger on SIGHUP, and a ledger file deleted or replaced under the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use pressroom::config::Config;
use pressroom::optout::TokenKey;

use super::daemon::{Daemon, client, rfc3339, wait_for, with_smtp};
use super::*;

fn state_dir(p: &Project) -> PathBuf {
    let (config, _) = Config::load(Some(&p.path().join("config/pressroom.toml"))).expect("config");
    config.paths.state
}

/// A release public five minutes ago, mailed to everyone on the sample's media list.
fn publish_now(p: &Project, slug: &str) {
    let date = rfc3339(pressroom::clock::now() - chrono::TimeDelta::minutes(5));
    p.write(
        &format!("releases/{slug}.md"),
        release(
            &format!("title = \"Nyhet {slug}\"\ndate = \"{date}\"\ntopics = [\"jamstalldhet\"]"),
            "Text.",
        ),
    );
}

/// The ledger read from another connection, as an admin's `sqlite3` would.
struct Peek(rusqlite::Connection);

impl Peek {
    fn open(p: &Project) -> Peek {
        let path = state_dir(p).join(pressroom::ledger::FILE_NAME);
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the ledger read-only");
        conn.busy_timeout(Duration::from_secs(10)).expect("timeout");
        Peek(conn)
    }

    fn states(&self) -> BTreeMap<String, usize> {
        let mut stmt = self
            .0
            .prepare("SELECT state, count(*) FROM deliveries GROUP BY state")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    }

    /// Deliveries still to be decided by a mail run.
    fn waiting(&self) -> usize {
        let s = self.states();
        ["queued", "sending", "deferred", "unknown"]
            .iter()
            .map(|k| s.get(*k).copied().unwrap_or(0))
            .sum()
    }

    fn opted_out(&self) -> BTreeSet<String> {
        let mut stmt = self
            .0
            .prepare("SELECT address FROM optouts")
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    }
}

/// Waits until the ledger has at least one delivery and none waits.
fn wait_until_sent(p: &Project, limit: Duration) -> Peek {
    wait_for("the dispatch to finish", limit, || {
        let peek = Peek::open(p);
        let s = peek.states();
        !s.is_empty() && peek.waiting() == 0
    });
    Peek::open(p)
}

fn assert_nobody_twice(server: &smtp::SmtpServer) -> BTreeMap<String, usize> {
    let counts = server.per_recipient();
    let doubles: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubles.is_empty(), "mailed more than once: {doubles:?}");
    counts
}

fn assert_no_failed_run(daemon: &Daemon) {
    let log = daemon.log();
    for bad in ["mail run failed", "cannot record", "panicked"] {
        assert!(!log.contains(bad), "`{bad}` in the log:\n{log}");
    }
}

#[test]
fn a_thousand_unsubscribes_and_a_tight_loop_during_a_4000_recipient_dispatch_double_nobody() {
    const EXTRA: usize = 4000;
    let (_dir, server, p, _port) = with_smtp(EXTRA);
    publish_now(&p, "stor");
    let daemon = Daemon::start(&p);
    let key = TokenKey::load_or_create(&state_dir(&p), None).expect("the daemon's key");
    let link = |address: &str| format!("{}/unsubscribe/{}", daemon.base, key.token(address));
    // Every fourth journalist, so opt-outs land before, during and after their turn.
    let leaving: Vec<String> = (0..1000)
        .map(|i| format!("journalist{:04}@example.org", i * 4))
        .collect();
    let looping = "journalist0001@example.org".to_string();
    wait_for("the first messages", Duration::from_secs(30), || {
        !server.messages().is_empty()
    });

    let done = Arc::new(AtomicBool::new(false));
    let loop_posts = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        let one = link(&looping);
        let (done, loop_posts, refused) = (&done, &loop_posts, &refused);
        s.spawn(move || {
            let http = client();
            while !done.load(Ordering::Relaxed) {
                let status = http
                    .post(&one)
                    .body("List-Unsubscribe=One-Click")
                    .send()
                    .map(|r| r.status().as_u16());
                loop_posts.fetch_add(1, Ordering::Relaxed);
                if !matches!(status, Ok(200)) {
                    refused
                        .lock()
                        .expect("lock")
                        .push(format!("loop: {status:?}"));
                }
            }
        });
        let posters: Vec<_> = leaving
            .chunks(125)
            .map(|chunk| {
                let urls: Vec<String> = chunk.iter().map(|a| link(a)).collect();
                s.spawn(move || {
                    let http = client();
                    for url in urls {
                        let status = http
                            .post(&url)
                            .body("List-Unsubscribe=One-Click")
                            .send()
                            .map(|r| r.status().as_u16());
                        if !matches!(status, Ok(200)) {
                            refused
                                .lock()
                                .expect("lock")
                                .push(format!("{url}: {status:?}"));
                        }
                    }
                })
            })
            .collect();
        for poster in posters {
            poster.join().expect("poster");
        }
        let sent_when_posted = server.messages().len();
        wait_until_sent(&p, Duration::from_secs(180));
        done.store(true, Ordering::Relaxed);
        assert!(
            sent_when_posted < EXTRA,
            "the opt-outs did not race the dispatch ({sent_when_posted} sent already)"
        );
    });
    std::thread::sleep(Duration::from_millis(300));

    let refused = refused.lock().expect("lock");
    assert!(
        refused.is_empty(),
        "refused POSTs: {:?}",
        &refused[..refused.len().min(10)]
    );
    assert!(loop_posts.load(Ordering::Relaxed) > 100, "the loop ran");
    let peek = Peek::open(&p);
    let states = peek.states();
    assert_eq!(states.get("sending"), None, "{states:?}");
    let opted_out = peek.opted_out();
    for a in leaving.iter().chain([&looping]) {
        assert!(opted_out.contains(a), "{a}'s opt-out was not recorded");
    }
    let counts = assert_nobody_twice(&server);
    let cancelled = states.get("cancelled").copied().unwrap_or(0);
    assert!(cancelled > 0, "no opt-out stopped a message: {states:?}");
    assert_eq!(
        counts.len() + cancelled,
        EXTRA + 2,
        "every recipient mailed once or stopped by their opt-out: {states:?}"
    );
    for (address, _) in counts.iter().filter(|(a, _)| !opted_out.contains(*a)) {
        assert!(address.ends_with("@example.org") || address.ends_with("@example.com"));
    }
    assert_no_failed_run(&daemon);
}

#[test]
fn pressroom_unsubscribe_from_the_command_line_while_the_daemon_mails_is_recorded_and_doubles_nobody()
 {
    const EXTRA: usize = 1500;
    let (_dir, server, p, _port) = with_smtp(EXTRA);
    publish_now(&p, "stor");
    let daemon = Daemon::start(&p);
    wait_for("the first messages", Duration::from_secs(30), || {
        !server.messages().is_empty()
    });
    let leaving: Vec<String> = (0..20)
        .map(|i| format!("journalist{:04}@example.org", 1000 + i * 20))
        .collect();
    for a in &leaving {
        let o = p.run(&["unsubscribe", a]);
        assert!(
            o.status.success(),
            "pressroom unsubscribe {a}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let peek = wait_until_sent(&p, Duration::from_secs(120));
    let states = peek.states();
    assert_eq!(states.get("sending"), None, "{states:?}");
    let opted_out = peek.opted_out();
    for a in &leaving {
        assert!(opted_out.contains(a), "{a}");
    }
    let counts = assert_nobody_twice(&server);
    let cancelled = states.get("cancelled").copied().unwrap_or(0);
    assert_eq!(counts.len() + cancelled, EXTRA + 2, "{states:?}");
    assert_no_failed_run(&daemon);
}

#[test]
fn a_changed_state_folder_on_sighup_is_refused_and_everything_stays_in_the_one_ledger() {
    let (_dir, server, p, _port) = with_smtp(0);
    let daemon = Daemon::start(&p);
    let http = client();
    let before = state_dir(&p);
    let elsewhere = p.path().join("elsewhere");
    p.set_config("state = \"state\"", "state = \"elsewhere\"");
    p.set_config(
        "Jämställdhetsmyndigheten – Pressrum",
        "Nytt namn på pressrummet",
    );
    daemon.signal("HUP");
    wait_for("the reload", Duration::from_secs(10), || {
        daemon.log().contains("config reloaded")
    });
    let log = daemon.log();
    assert!(
        log.contains("[paths] state changed to") && log.contains("until pressroom restarts"),
        "{log}"
    );
    // The rest of the new config took effect.
    wait_for("the new title", Duration::from_secs(10), || {
        super::daemon::get(&http, &daemon.base, "/feed.atom")
            .1
            .contains("Nytt namn på pressrummet")
    });
    // A publication and an opt-out afterwards go to the ledger the daemon started with.
    publish_now(&p, "efter");
    wait_for("the mail", Duration::from_secs(20), || {
        server.messages().len() == 2
    });
    let key = TokenKey::load_or_create(&before, None).expect("key");
    let r = http
        .post(format!(
            "{}/unsubscribe/{}",
            daemon.base,
            key.token("anna.lind@example.org")
        ))
        .body("List-Unsubscribe=One-Click")
        .send()
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert!(
        !elsewhere.join(pressroom::ledger::FILE_NAME).exists(),
        "a second ledger was made in {}",
        elsewhere.display()
    );
    let l = pressroom::ledger::Ledger::open_in(&before).expect("ledger");
    assert!(l.is_opted_out("anna.lind@example.org").expect("read"));
    assert!(
        l.revisions()
            .expect("read")
            .keys()
            .any(|id| id.contains("efter")),
        "the publication is in the first ledger"
    );
}

/// CPU seconds the process has used (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

#[test]
fn a_ledger_deleted_while_running_is_written_back_and_a_replaced_one_is_refused_without_a_loop() {
    let (_dir, server, p, _port) = with_smtp(0);
    let daemon = Daemon::start(&p);
    let state = state_dir(&p);
    let db = state.join(pressroom::ledger::FILE_NAME);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    publish_now(&p, "forst");
    wait_for(
        "the mail after the deletion",
        Duration::from_secs(20),
        || server.messages().len() == 2,
    );
    wait_for("the report", Duration::from_secs(5), || {
        daemon.log().contains("was deleted while pressroom ran")
    });
    assert!(db.exists(), "the ledger was written back");
    let l = pressroom::ledger::Ledger::open_in(&state).expect("ledger");
    assert!(
        l.revisions()
            .expect("read")
            .keys()
            .any(|id| id.contains("forst"))
    );
    drop(l);

    // Replaced by another file (a restore gone wrong): refused, reported once, no loop.
    let other = state.join("other.db");
    drop(pressroom::ledger::Ledger::open(&other).expect("another ledger"));
    std::fs::rename(&other, &db).expect("replace");
    publish_now(&p, "andra");
    wait_for("the report", Duration::from_secs(10), || {
        daemon.log().contains("was replaced by another file")
    });
    let lines = daemon.log().lines().count();
    let cpu = cpu_seconds(daemon.pid());
    std::thread::sleep(Duration::from_secs(3));
    let log = daemon.log();
    let more = log.lines().count() - lines;
    let used = cpu_seconds(daemon.pid()) - cpu;
    assert!(more <= 5, "{more} log lines in 3 s:\n{log}");
    assert!(used < 0.5, "{used} CPU seconds in 3 s");
    assert_eq!(
        log.matches("until pressroom is restarted on it").count(),
        1,
        "reported once:\n{log}"
    );
    assert_eq!(
        server.messages().len(),
        2,
        "nothing mailed past the refusal"
    );
    // The page is served all the same: only recording and mail wait.
    let (status, _) = super::daemon::get(&client(), &daemon.base, "/releases/andra/");
    assert_eq!(status, 200);
}

/// The daemon on a full output disk: the publication's build fails, and once space
/// returns the daemon builds again by itself (no other change, no SIGHUP), publishes the
/// release and decides its mail.
#[test]
fn a_publication_a_full_disk_stopped_is_published_and_mailed_once_space_returns() {
    if !super::bad_input::can_mount_tmpfs() {
        eprintln!("skipped: this system gives no mount namespace for a small tmpfs");
        return;
    }
    let (p, _port) = super::daemon::sample_served();
    let work = tempfile::tempdir().expect("dir");
    let out = work.path().join("site");
    std::fs::create_dir(&out).expect("mount point");
    p.set_config(
        "public = \"public\"",
        &format!("public = \"{}\"", out.display()),
    );
    let date = rfc3339(pressroom::clock::now() - chrono::TimeDelta::minutes(5));
    std::fs::write(
        work.path().join("stor.md"),
        release(
            &format!(
                "title = \"Stor nyhet\"\ndate = \"{date}\"\ntopics = [\"jamstalldhet\"]\ncontacts = [{{ name = \"Presstjänst\", email = \"press@example.org\" }}]"
            ),
            &"Jämställdhetsmyndigheten lanserar en ny kampanj i dag. ".repeat(9_000),
        ),
    )
    .expect("big release");
    // A 400 KB disk in a mount namespace: the daemon starts, the big release arrives and
    // does not fit, then the disk grows to 64 MB.
    let script = r#"
set -e
mount -t tmpfs -o size=400k tmpfs "$OUT"
"$BIN" --config "$CONFIG" run 2>"$WORK/run.err" &
pid=$!
for i in $(seq 100); do grep -q "serving" "$WORK/run.err" && break; sleep 0.1; done
cp "$WORK/stor.md" "$RELEASES/"
for i in $(seq 100); do grep -q "trying again in" "$WORK/run.err" && break; sleep 0.1; done
mount -o remount,size=64m "$OUT"
for i in $(seq 450); do grep -q "published slug=stor" "$WORK/run.err" && break; sleep 0.1; done
test -f "$OUT/releases/stor/index.html" && echo page >"$WORK/page"
kill $pid; wait $pid || true
"#;
    let o = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .env("OUT", &out)
        .env("WORK", work.path())
        .env("BIN", env!("CARGO_BIN_EXE_pressroom"))
        .env("CONFIG", p.path().join("config/pressroom.toml"))
        .env("RELEASES", p.path().join("releases"))
        .output()
        .expect("unshare");
    let log = std::fs::read_to_string(work.path().join("run.err")).unwrap_or_default();
    assert!(
        o.status.success(),
        "{}\n{log}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        log.contains("the build failed") && log.contains("trying again in 30s"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("published slug=stor") && l.contains("Queued(2)")),
        "published and mailed after the retry:\n{log}"
    );
    assert!(
        work.path().join("page").exists(),
        "the page was written:\n{log}"
    );
}
