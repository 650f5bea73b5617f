//! Mail through a real SMTP server process: aiosmtpd (tests/smtp/server.py), a third-party
//! server implementation whose replies a rules file scripts: 451s, 550s, dropped
//! connections, a server that is down and comes up.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::*;

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
    rules: PathBuf,
}

impl SmtpServer {
    /// Starts the server; `port` 0 picks a free one.
    pub fn start(dir: &Path, port: u16) -> SmtpServer {
        SmtpServer::start_with(dir, port, &[])
    }

    /// Starts the server with more options (`--tls`, `--auth`: see tests/smtp/server.py).
    pub fn start_with(dir: &Path, port: u16, options: &[&str]) -> SmtpServer {
        let maildir = dir.join("maildir");
        let rules = dir.join("smtp-rules.json");
        if !rules.exists() {
            std::fs::write(&rules, "{}").expect("rules");
        }
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/server.py"))
            .args(["--port", &port.to_string(), "--maildir"])
            .arg(&maildir)
            .arg("--rules")
            .arg(&rules)
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("smtp.log")).expect("log"))
            .spawn()
            .expect("python3 runs tests/smtp/server.py (install with .ci/install-test-tools.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("READY line");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no READY line: {line:?}"));
        SmtpServer {
            child,
            port,
            maildir,
            rules,
        }
    }

    pub fn rules(&self, json: &str) {
        std::fs::write(&self.rules, json).expect("rules");
    }

    /// Every stored message: (recipient, raw bytes), in arrival order.
    pub fn messages(&self) -> Vec<(String, Vec<u8>)> {
        self.received()
            .into_iter()
            .map(|(_, rcpt, bytes)| (rcpt, bytes))
            .collect()
    }

    /// Every message with when the server accepted it (Unix seconds) and its recipient,
    /// oldest first. The server makes its folder before it says READY: a folder that is not
    /// there is a broken setup, not a server that received nothing.
    pub fn received(&self) -> Vec<(f64, String, Vec<u8>)> {
        let mut found: Vec<(f64, String, Vec<u8>)> = Vec::new();
        let new = self.maildir.join("new");
        let listing = std::fs::read_dir(&new)
            .unwrap_or_else(|e| panic!("cannot list the mail folder {}: {e}", new.display()));
        for entry in listing.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "eml") {
                let meta: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(path.with_extension("json")).expect("sidecar"),
                )
                .expect("json");
                let rcpt = meta["rcpt_to"][0].as_str().expect("rcpt").to_lowercase();
                let received = meta["received_at"]
                    .as_f64()
                    .unwrap_or_else(|| panic!("no received_at in {meta}"));
                found.push((received, rcpt, std::fs::read(&path).expect("eml")));
            }
        }
        found.sort_by(|a, b| a.0.total_cmp(&b.0));
        found
    }

    /// How many messages the server has stored so far: cheap enough to poll, as it only
    /// lists the folder.
    pub fn count(&self) -> usize {
        let new = self.maildir.join("new");
        std::fs::read_dir(&new)
            .unwrap_or_else(|e| panic!("cannot list the mail folder {}: {e}", new.display()))
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count()
    }

    /// How many messages each recipient got.
    pub fn per_recipient(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (rcpt, _) in self.messages() {
            *counts.entry(rcpt).or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The most deliveries one run can have claimed and not recorded when it is killed, from
/// the test's own numbers and how src/mail/sender.rs says it claims: batches of
/// `max(2 × concurrency, 8)`, the next one claimed while the current one is composed (two
/// batches), plus what the previous batch still has on the way: the channel of composed
/// messages (`concurrency`) and the messages on the wire (`concurrency`). Only those can
/// be mailed again after a crash.
pub fn in_flight_per_run(concurrency: usize) -> usize {
    let batch = (concurrency * 2).max(8);
    2 * batch + 2 * concurrency
}

/// The `[mail] concurrency` of [`project_with_smtp`].
pub const CONCURRENCY: usize = 8;

/// Every copy a recipient got carries one Message-ID, and no two recipients share one.
pub fn assert_one_message_id_each(ids: &BTreeMap<String, Vec<String>>) {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (rcpt, got) in ids {
        assert!(
            got.iter().all(|id| *id == got[0]),
            "{rcpt} got different Message-IDs: {got:?}"
        );
        if let Some(other) = owners.insert(&got[0], rcpt) {
            panic!("{rcpt} and {other} got the same Message-ID {}", got[0]);
        }
    }
}

/// The sample project pointed at the server, with `n` extra recipients on the media list.
pub fn project_with_smtp(port: u16, n: usize) -> Project {
    let p = Project::sample();
    let config = p.path().join("config/pressroom.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .replace(
            "transport = \"file\"",
            &format!("transport = \"smtp\"\nurl = \"smtp://127.0.0.1:{port}\""),
        )
        .replace("rate = 20", "rate = 5000")
        .replace("concurrency = 4", &format!("concurrency = {CONCURRENCY}"));
    std::fs::write(&config, text).expect("config");
    let mut media = std::fs::read_to_string(p.path().join("config/media.csv")).expect("media");
    for i in 0..n {
        media.push_str(&format!(
            "journalist{i:04}@example.org,Journalist {i},Tidning {i},,\n"
        ));
    }
    std::fs::write(p.path().join("config/media.csv"), media).expect("media");
    p
}

fn send(p: &Project, extra: &[&str]) -> String {
    let mut args = vec!["send", "du-avgor"];
    args.extend_from_slice(extra);
    let o = p.run(&args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "send failed: {err}");
    err
}

/// The sample's targeted recipients (sv or any language, matching topics) plus the extras.
fn targeted(n: usize) -> Vec<String> {
    let mut all = vec![
        "anna.lind@example.org".to_string(),
        "bo.ek@example.com".into(),
        "cecilia.berg@example.org".into(),
    ];
    all.extend((0..n).map(|i| format!("journalist{i:04}@example.org")));
    all.sort();
    all
}

#[test]
fn every_targeted_recipient_gets_exactly_one_message_and_a_second_send_mails_nobody() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 20);
    let err = send(&p, &[]);
    assert!(err.contains("23 sent, 0 deferred"), "{err}");
    let counts = server.per_recipient();
    assert_eq!(
        counts.keys().cloned().collect::<Vec<_>>(),
        targeted(20),
        "nobody else (not en, not sport)"
    );
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let first = server.messages().swap_remove(0).1;
    let m = mail_parser::MessageParser::default()
        .parse(&first)
        .expect("parse");
    assert_eq!(
        m.subject(),
        Some("Pressmeddelande: Kampanj mot prostitution och människohandel")
    );
    assert!(m.body_text(0).is_some() && m.body_html(0).is_some());

    let err = send(&p, &[]);
    assert!(err.contains("nothing to send"), "{err}");
    assert_eq!(server.messages().len(), 23, "run twice, mails nobody twice");
}

#[test]
fn temporary_failures_are_retried_permanent_ones_never() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    server.rules(r#"{"rcpt": {"journalist0001@example.org": {"code": 451, "times": 1}, "journalist0002@example.org": {"code": 550}}}"#);
    let p = project_with_smtp(server.port, 5);
    let err = send(&p, &[]);
    assert!(
        err.contains("6 sent, 1 deferred (retried later), 1 failed"),
        "{err}"
    );
    let report =
        String::from_utf8_lossy(&p.run(&["report", "du-avgor", "--csv"]).stdout).into_owned();
    assert!(
        report.contains("journalist0001@example.org,1,deferred,1,"),
        "{report}"
    );
    assert!(
        report.contains("journalist0002@example.org,1,failed,1,") && report.contains("550"),
        "{report}"
    );

    let err = send(&p, &[]);
    assert!(
        err.contains("1 sent, 0 deferred (retried later), 0 failed"),
        "the 451 is retried; the 550 is not: {err}"
    );
    let counts = server.per_recipient();
    assert_eq!(counts.get("journalist0001@example.org"), Some(&1));
    assert_eq!(counts.get("journalist0002@example.org"), None);
    assert_eq!(counts.values().sum::<usize>(), 7);
}

#[test]
fn a_dropped_connection_misses_nobody_and_doubles_nobody() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    server.rules(r#"{"drop_after_messages": 10}"#);
    let p = project_with_smtp(server.port, 40);
    let first = send(&p, &[]);
    assert!(
        first.contains(" 1 deferred"),
        "the dropped message is deferred: {first}"
    );
    send(&p, &[]);
    let counts = server.per_recipient();
    assert_eq!(
        counts.keys().cloned().collect::<Vec<_>>(),
        targeted(40),
        "nobody missed"
    );
    assert!(
        counts.values().all(|&n| n == 1),
        "nobody doubled: {counts:?}"
    );
}

#[test]
fn a_server_that_is_down_then_up_gets_everything() {
    let dir = tempfile::tempdir().expect("dir");
    // Find a free port, then leave it closed: the server is down.
    let port = free_port();
    let p = project_with_smtp(port, 5);
    let err = send(&p, &[]);
    assert!(err.contains("0 sent, 8 deferred"), "{err}");
    let server = SmtpServer::start(dir.path(), port);
    let err = send(&p, &[]);
    assert!(err.contains("8 sent"), "{err}");
    assert_eq!(server.per_recipient().len(), 8);
}

#[test]
fn an_opt_out_recorded_after_queueing_still_stops_the_mail() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let p = project_with_smtp(port, 2);
    send(&p, &[]); // server down: everyone deferred
    assert!(
        p.run(&["unsubscribe", "bo.ek@example.com"])
            .status
            .success()
    );
    let server = SmtpServer::start(dir.path(), port);
    let err = send(&p, &[]);
    assert!(
        err.contains("4 sent") && err.contains("1 cancelled"),
        "{err}"
    );
    assert!(!server.per_recipient().contains_key("bo.ek@example.com"));
}

/// Recipients are re-checked as each message is handed over (SPEC §4): one taken off the
/// media list, or whose topics no longer match, after their mail was queued is not mailed,
/// with the reason in the report; nobody gets the anonymous greeting of an unknown reader.
#[test]
fn recipients_removed_or_retargeted_after_queueing_are_not_mailed_and_the_report_says_why() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let p = project_with_smtp(port, 2);
    send(&p, &[]); // server down: everyone deferred
    let path = p.path().join("config/media.csv");
    let media = std::fs::read_to_string(&path).expect("media");
    assert!(media.contains("bo.ek@example.com") && media.contains(",Jämställdhet\n"));
    let media: String = media
        .lines()
        .filter(|l| !l.starts_with("bo.ek@"))
        .map(|l| format!("{}\n", l.replace(",Jämställdhet", ",sport")))
        .collect();
    std::fs::write(&path, media).expect("media");

    let server = SmtpServer::start(dir.path(), port);
    let err = send(&p, &[]);
    assert!(
        err.contains("3 sent") && err.contains("2 cancelled"),
        "{err}"
    );
    let mailed: Vec<String> = server.per_recipient().into_keys().collect();
    assert_eq!(
        mailed,
        [
            "anna.lind@example.org",
            "journalist0000@example.org",
            "journalist0001@example.org"
        ]
    );
    for (rcpt, raw) in server.messages() {
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(!text.contains("Hej!"), "{rcpt} was greeted as a stranger");
    }
    let o = p.run(&["report", "du-avgor", "--csv"]);
    let report = String::from_utf8_lossy(&o.stdout).into_owned();
    let row = |who: &str| {
        report
            .lines()
            .find(|l| l.starts_with(who))
            .unwrap_or_else(|| panic!("{who} not in the report: {report}"))
            .to_string()
    };
    assert!(
        row("bo.ek@").contains("cancelled")
            && row("bo.ek@").contains("no longer on the media list"),
        "{report}"
    );
    assert!(
        row("cecilia.berg@").contains("cancelled")
            && row("cecilia.berg@").contains("topics do not match: takes sport"),
        "{report}"
    );
}

/// A media list that cannot be read (a save that replaces it, a share that is gone) says
/// nothing about who is on it: nothing is sent and nothing is cancelled.
#[test]
fn with_the_media_list_missing_nothing_is_sent_or_cancelled() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let p = project_with_smtp(port, 0);
    send(&p, &[]); // server down: everyone deferred
    let path = p.path().join("config/media.csv");
    let saved = std::fs::read(&path).expect("media");
    std::fs::remove_file(&path).expect("rm");
    let server = SmtpServer::start(dir.path(), port);
    let o = p.run(&["send", "du-avgor"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert!(server.messages().is_empty());
    std::fs::write(&path, saved).expect("media back");
    let err = send(&p, &[]);
    assert!(
        err.contains("3 sent") && err.contains("0 cancelled"),
        "{err}"
    );
}

/// `send --to` is a test: it goes at once to any address, with a Message-ID of its own,
/// is recorded as a test and is none of the release's deliveries: the real send still
/// mails everyone targeted, that address included, with the real Message-ID.
#[test]
fn a_test_send_is_not_a_delivery_and_never_stands_in_for_the_real_mail() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 0);
    for to in ["pressofficer@example.com", "anna.lind@example.org"] {
        let o = p.run(&["send", "du-avgor", "--to", to]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        assert!(err.contains("a test of `du-avgor` was sent"), "{err}");
    }
    let tests = server.messages();
    assert_eq!(tests.len(), 2);
    let parse = |raw: &[u8]| {
        let m = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("parse");
        (
            m.message_id().expect("id").to_string(),
            m.body_text(0).expect("text").into_owned(),
        )
    };
    let (test_id, text) = parse(&tests[1].1);
    assert!(
        text.contains("Anna Lind"),
        "a listed address is greeted by name: {text}"
    );
    let status = String::from_utf8_lossy(&p.run(&["status"]).stdout).into_owned();
    assert!(
        !status.contains("sent"),
        "a test counted as a delivery: {status}"
    );
    let report =
        String::from_utf8_lossy(&p.run(&["report", "du-avgor", "--csv"]).stdout).into_owned();
    assert_eq!(report.lines().count(), 1, "{report}");

    let err = send(&p, &[]);
    assert!(err.contains("3 sent"), "{err}");
    let all = server.messages();
    assert_eq!(all.len(), 5);
    let real: Vec<(String, String)> = all[2..]
        .iter()
        .map(|(rcpt, raw)| (rcpt.clone(), parse(raw).0))
        .collect();
    assert!(!real.iter().any(|(r, _)| r == "pressofficer@example.com"));
    let (_, anna_id) = real
        .iter()
        .find(|(r, _)| r == "anna.lind@example.org")
        .expect("anna got the real mail");
    assert_ne!(*anna_id, test_id, "the test carried the real Message-ID");
    assert!(test_id.starts_with("test-"), "{test_id}");
}

#[test]
fn a_correction_goes_only_to_those_who_got_the_original_threaded_to_it() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    server.rules(r#"{"rcpt": {"journalist0000@example.org": {"code": 550}}}"#);
    let p = project_with_smtp(server.port, 1);
    send(&p, &[]);
    let originals: BTreeMap<String, String> = server
        .messages()
        .iter()
        .map(|(r, b)| {
            let m = mail_parser::MessageParser::default()
                .parse(b)
                .expect("parse");
            (r.clone(), m.message_id().expect("id").to_string())
        })
        .collect();
    let sample = p.path().join("releases/2018-10-18-du-avgor.md");
    let text = std::fs::read_to_string(&sample).expect("read");
    std::fs::write(&sample, text.replace("drygt 7 procent", "drygt 8 procent")).expect("edit");
    let err = send(&p, &["--update"]);
    assert!(err.contains("(correction 1): 3 sent"), "{err}");
    let all = server.messages();
    assert_eq!(all.len(), 6);
    for (rcpt, bytes) in &all[3..] {
        let m = mail_parser::MessageParser::default()
            .parse(&bytes[..])
            .expect("parse");
        assert!(
            m.subject().is_some_and(|s| s.contains("Uppdaterat: ")),
            "marked as an update"
        );
        let original = &originals[rcpt];
        assert_eq!(
            m.in_reply_to().as_text(),
            Some(original.as_str()),
            "threaded"
        );
        assert!(
            m.body_text(0)
                .is_some_and(|t| t.contains("drygt 8 procent"))
        );
    }
    assert!(!all.iter().any(|(r, _)| r == "journalist0000@example.org"));
}

#[test]
fn killed_mid_dispatch_the_next_run_finishes_and_only_unknowns_can_double() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 1000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_pressroom"))
        .arg("--config")
        .arg(p.path().join("config/pressroom.toml"))
        .args(["send", "du-avgor"])
        .stderr(Stdio::null())
        .spawn()
        .expect("send");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.messages().len() < 300 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let before = server.messages().len();
    assert!(before < 1003, "killed before the end ({before})");

    let err = send(&p, &[]);
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rcpt, bytes) in server.messages() {
        let m = mail_parser::MessageParser::default()
            .parse(&bytes[..])
            .expect("parse");
        ids.entry(rcpt)
            .or_default()
            .push(m.message_id().expect("id").to_string());
    }
    assert_eq!(
        ids.keys().cloned().collect::<Vec<_>>(),
        targeted(1000),
        "every recipient has a message"
    );
    assert_one_message_id_each(&ids);
    // One kill: at most what one run can have claimed and not recorded at the project's
    // concurrency, whatever the second run says it found.
    let doubles: usize = ids.values().map(|v| v.len() - 1).sum();
    let bound = in_flight_per_run(CONCURRENCY);
    assert!(
        doubles <= bound,
        "{doubles} mailed twice after one kill; at most {bound} can be in flight: {err}"
    );
}

/// Each MIME part's Content-Transfer-Encoding, in order.
fn transfer_encodings(raw: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(raw)
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("Content-Transfer-Encoding")
                .then(|| value.trim().to_lowercase())
        })
        .collect()
}

#[test]
fn a_server_that_takes_8bit_gets_the_parts_unencoded_and_tricky_bodies_still_arrive_intact() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 0);
    let long = "x".repeat(2000);
    p.write(
        "releases/2019-01-01-prick.md",
        release(
            "title = \"Prick\"\ndate = 2019-01-01",
            "Före\n\n.\n\n.. och efter, på svenska.",
        ),
    );
    p.write(
        "releases/2019-01-02-punkt.md",
        release(
            "title = \"Punkt\"\ndate = 2019-01-02",
            &format!("Före\n\n.\n\nEfter med ensam\rCR och {long}"),
        ),
    );
    for slug in ["du-avgor", "prick", "punkt"] {
        let o = p.run(&["send", slug, "--to", "anna.lind@example.org"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let messages = server.messages();
    assert_eq!(messages.len(), 3);
    for (_, raw) in &messages {
        assert_wire_clean(raw);
    }
    let parse = |raw| {
        mail_parser::MessageParser::default()
            .parse(raw)
            .expect("parse")
    };

    // The sample: Swedish text in long HTML lines, as it is.
    let sample = parse(&messages[0].1);
    assert_eq!(transfer_encodings(&messages[0].1), ["8bit", "8bit"]);
    let (text, html) = (sample.body_text(0).unwrap(), sample.body_html(0).unwrap());
    for sentence in SAMPLE_SENTENCES {
        assert!(text.contains(sentence), "text part lacks {sentence:?}");
        assert!(html.contains(sentence), "HTML part lacks {sentence:?}");
    }

    // Lines that start with a dot, unencoded: the client's dot-stuffing keeps them.
    assert_eq!(transfer_encodings(&messages[1].1), ["8bit", "8bit"]);
    let text = parse(&messages[1].1).body_text(0).unwrap().into_owned();
    assert!(
        text.contains("\r\n.\r\n") && text.contains("\r\n.. och efter, på svenska."),
        "{text:?}"
    );

    // A 2,000-character line (and a lone CR, if one reaches the part) cannot go
    // unencoded: lettre encodes them.
    assert!(
        transfer_encodings(&messages[2].1)
            .iter()
            .all(|e| e != "8bit" && e != "7bit"),
        "{:?}",
        transfer_encodings(&messages[2].1)
    );
    let text = parse(&messages[2].1).body_text(0).unwrap().into_owned();
    assert!(text.contains(&long), "the 2,000-character line survives");
    assert!(
        text.contains("\n.\n") || text.contains("\r\n.\r\n"),
        "a lone dot line survives"
    );
}

#[test]
fn a_server_that_answers_garbage_defers_everyone_and_breaks_nothing() {
    // Not an SMTP server: it answers every connection with bytes that are no reply.
    let script = r#"
import socket, sys, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
def serve(c):
    try:
        c.sendall(b"\x00\xffgarbage\r\n999 \xc3\x28 not smtp\r\n\r\n.\r\n")
        c.recv(4096)
        c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port: u16 = line.trim().parse().expect("a port");
    let p = project_with_smtp(port, 5);
    let started = std::time::Instant::now();
    let o = p.run(&["send", "du-avgor"]);
    let _ = child.kill();
    let _ = child.wait();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("0 sent, 8 deferred"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let report =
        String::from_utf8_lossy(&p.run(&["report", "du-avgor", "--csv"]).stdout).into_owned();
    assert_eq!(report.matches(",deferred,").count(), 8, "{report}");
}

#[test]
fn a_server_that_answers_one_byte_a_second_defers_everyone_within_the_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    server.rules(r#"{"byte_ms": 1000}"#);
    let p = project_with_smtp(server.port, 0);
    p.set_config("timeout = \"60s\"", "timeout = \"3s\"");

    // Its greeting alone takes half a minute: every attempt stops at `timeout`.
    let started = std::time::Instant::now();
    let err = send(&p, &[]);
    let took = started.elapsed();
    assert!(err.contains("0 sent, 3 deferred"), "{err}");
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert!(server.messages().is_empty());
    let report =
        String::from_utf8_lossy(&p.run(&["report", "du-avgor", "--csv"]).stdout).into_owned();
    assert_eq!(report.matches(",deferred,").count(), 3, "{report}");
    assert!(report.contains("timed out"), "{report}");

    // The server recovers: the next run mails each of them once.
    server.rules("{}");
    let err = send(&p, &[]);
    assert!(err.contains("3 sent"), "{err}");
    assert_eq!(server.per_recipient().len(), 3);
    assert!(server.per_recipient().values().all(|&n| n == 1));
}
