//! The smaller mail faults, through the real binary and the real SMTP test server: Ctrl-C
//! on `send`, addresses a server without SMTPUTF8 cannot take, IDN domains, a server that
//! closes an idle connection, quoted local parts, and header lines within 998 octets.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::smtp::{SmtpServer, project_with_smtp};
use super::*;

/// `send du-avgor EXTRA…`, which must succeed; returns stderr.
fn send(p: &Project, extra: &[&str]) -> String {
    let mut args = vec!["send", "du-avgor"];
    args.extend_from_slice(extra);
    let o = p.run(&args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "send failed: {err}");
    err
}

/// The report as (address → (state, attempts, reply)).
fn report(p: &Project) -> BTreeMap<String, (String, String, String)> {
    let o = p.run(&["report", "du-avgor", "--csv"]);
    assert!(o.status.success());
    let mut rows = BTreeMap::new();
    let mut csv = csv::Reader::from_reader(&o.stdout[..]);
    for row in csv.records() {
        let row = row.expect("a CSV row");
        rows.insert(
            row[0].to_string(),
            (row[2].to_string(), row[3].to_string(), row[6].to_string()),
        );
    }
    rows
}

fn append_media(p: &Project, rows: &str) {
    let path = p.path().join("config/media.csv");
    let mut media = std::fs::read_to_string(&path).expect("media");
    media.push_str(rows);
    std::fs::write(&path, media).expect("media");
}

/// SPEC §8: Ctrl-C stops `send` between two messages: what is in flight finishes and is
/// recorded, a summary is printed, nothing is left `sending`, and the next send mails
/// exactly the rest.
#[test]
fn ctrl_c_during_send_finishes_in_flight_messages_records_them_and_the_next_send_mails_the_rest() {
    interrupt_a_send("INT", 130);
}

/// SIGTERM (a service manager, `kill`) stops `send` the same way, with the shell's 143.
#[test]
fn sigterm_during_send_stops_it_the_same_way_with_exit_code_143() {
    interrupt_a_send("TERM", 143);
}

/// A send of 303 messages to a slow server, `signal` once 40 have arrived; the exit
/// `code` expected.
fn interrupt_a_send(signal: &str, code: i32) {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    // Four replies a message, 15 ms each: eight connections take ~25 messages a second.
    server.rules(r#"{"delay_ms": 15}"#);
    let p = project_with_smtp(server.port, 300);
    let child = Command::new(env!("CARGO_BIN_EXE_pressroom"))
        .arg("--config")
        .arg(p.path().join("config/pressroom.toml"))
        .args(["send", "du-avgor"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.count() < 40 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let interrupted_at = Instant::now();
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{signal}");
    let out = child.wait_with_output().expect("send ends");
    let took = interrupted_at.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code after SIG{signal}: {err}"
    );
    assert!(
        took < Duration::from_secs(10),
        "stopped {took:?} after SIG{signal}"
    );

    let accepted = server.count();
    assert!(
        accepted < 303,
        "interrupted before the end ({accepted}): {err}"
    );
    let rows = report(&p);
    assert_eq!(rows.len(), 303);
    let in_state = |state: &str| rows.values().filter(|(s, _, _)| s == state).count();
    assert_eq!(in_state("sending"), 0, "left `sending`: {err}");
    assert_eq!(in_state("unknown"), 0, "{err}");
    assert_eq!(
        in_state("sent"),
        accepted,
        "every message the server took was finished and recorded"
    );
    let queued = in_state("queued");
    assert_eq!(in_state("sent") + queued, 303, "{rows:?}");
    assert!(
        err.contains(&format!("`du-avgor`: {accepted} sent, 0 deferred")),
        "the usual summary: {err}"
    );
    assert!(
        err.contains(&format!("interrupted: {queued} wait for the next send")),
        "{err}"
    );

    let again = send(&p, &[]);
    assert!(
        again.contains(&format!("{queued} sent, 0 deferred")),
        "{again}"
    );
    let counts = server.per_recipient();
    assert_eq!(counts.len(), 303, "everyone mailed");
    let doubles: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubles.is_empty(), "mailed twice: {doubles:?}");
}

/// An address with a non-ASCII local part cannot be given to a server that does not
/// advertise SMTPUTF8, now or later: it fails at once, with the reason recorded. An IDN
/// domain has an ASCII form (punycode), which any server takes, on the envelope and in
/// `To:`.
#[test]
fn a_server_without_smtputf8_fails_a_utf8_local_part_at_once_and_takes_idn_domains_as_punycode() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start_with(dir.path(), 0, &["--no-smtputf8"]);
    let p = project_with_smtp(server.port, 0);
    append_media(
        &p,
        "åsa@example.org,Åsa Öst,,,\nanna@exämple.org,Anna Ex,,,\n",
    );

    let err = send(&p, &[]);
    assert!(
        err.contains("4 sent, 0 deferred (retried later), 1 failed"),
        "{err}"
    );
    let rows = report(&p);
    let (state, attempts, reply) = &rows["åsa@example.org"];
    assert_eq!((state.as_str(), attempts.as_str()), ("failed", "1"));
    assert_eq!(
        reply,
        "the server does not accept internationalised addresses (SMTPUTF8)"
    );
    assert_eq!(rows["anna@exämple.org"].0, "sent");
    let idn = server
        .messages()
        .into_iter()
        .filter(|(rcpt, _)| rcpt == "anna@xn--exmple-cua.org")
        .map(|(_, raw)| raw)
        .collect::<Vec<_>>();
    assert_eq!(idn.len(), 1, "{:?}", server.per_recipient());
    let m = mail_parser::MessageParser::default()
        .parse(&idn[0])
        .expect("parse");
    let to = m.to().and_then(|to| to.first()).expect("a To:");
    assert_eq!(to.address(), Some("anna@xn--exmple-cua.org"));
    assert_eq!(to.name(), Some("Anna Ex"));
    let again = send(&p, &[]);
    assert!(again.contains("nothing to send"), "never retried: {again}");

    // A server that takes SMTPUTF8 gets the address as it is, when asked to try again.
    let dir2 = tempfile::tempdir().expect("dir");
    let utf8 = SmtpServer::start(dir2.path(), 0);
    p.set_config(
        &format!("127.0.0.1:{}", server.port),
        &format!("127.0.0.1:{}", utf8.port),
    );
    let err = send(&p, &["--retry-failed"]);
    assert!(err.contains("1 sent, 0 deferred"), "{err}");
    assert_eq!(
        utf8.per_recipient().into_keys().collect::<Vec<_>>(),
        ["åsa@example.org"]
    );
    let meta = std::fs::read_dir(utf8.maildir.join("new"))
        .expect("maildir")
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))
        .expect("a sidecar");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(meta.path()).expect("json")).expect("json");
    assert!(
        meta["mail_options"]
            .as_array()
            .expect("options")
            .iter()
            .any(|o| o == "SMTPUTF8"),
        "{meta}"
    );
}

/// A server that closes a connection after it accepted a message (an idle timeout, a
/// limit per connection): the next message opens a new connection at once, and nobody is
/// deferred for the backoff. (A connection dropped in a message's own transaction still
/// defers that message: `smtp::a_dropped_connection_misses_nobody_and_doubles_nobody`.)
#[test]
fn after_a_server_closes_a_connection_behind_a_250_the_next_message_goes_on_a_new_one_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    // Every connection is closed right after its first message's 250.
    server.rules(r#"{"close_after_accepting": 1}"#);
    let p = project_with_smtp(server.port, 40);
    let err = send(&p, &[]);
    assert!(
        err.contains("43 sent, 0 deferred (retried later), 0 failed"),
        "{err}"
    );
    let counts = server.per_recipient();
    assert_eq!(counts.len(), 43);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let rows = report(&p);
    assert!(
        rows.values()
            .all(|(state, attempts, _)| state == "sent" && attempts == "1"),
        "{rows:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("smtp.log")).expect("log");
    assert!(
        log.matches(" close ").count() >= 43,
        "the server closed each connection: {log}"
    );
}

/// `check` accepts only addresses we can send to: a quoted local part, which lettre takes
/// as an address but cannot read back from the `To:` header it writes, is an error at its
/// line and column, and `send` skips the row rather than failing it forever.
#[test]
fn a_quoted_local_part_is_a_check_error_at_its_line_and_column_and_never_queued() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 0);
    let media = std::fs::read_to_string(p.path().join("config/media.csv")).expect("media");
    let line = media.lines().count() + 1;
    append_media(&p, "\"\"\"quoted local\"\"@example.org\",Q,,,\n");
    let o = p.run(&["check"]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "media.csv:{line}:2: `\"quoted local\"@example.org` cannot be mailed"
        )),
        "{out}"
    );
    let err = send(&p, &[]);
    assert!(
        err.contains("3 sent, 0 deferred (retried later), 0 failed"),
        "{err}"
    );
    assert_eq!(server.per_recipient().len(), 3);
}

/// RFC 5322 §2.1.1: no line of a message over 998 octets, with a 5,000-character name on
/// the media list and a title of 200 characters (the most `check` allows). The name is
/// cut for `To:` and whole in the greeting.
#[test]
fn a_five_thousand_character_name_and_a_200_character_title_keep_every_line_within_998_octets() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 0);
    let name = "Namn".repeat(1250);
    append_media(&p, &format!("long@example.org,{name},,,\n"));
    let title = "Rubrik".repeat(33) + "ab";
    assert_eq!(title.chars().count(), 200);
    p.write(
        "releases/2019-01-01-lang.md",
        release(&format!("title = \"{title}\"\ndate = 2019-01-01"), "Text."),
    );
    let o = p.run(&["send", "lang", "--to", "long@example.org"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let raw = &messages[0].1;
    assert_wire_clean(raw);
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse");
    let to = m.to().and_then(|to| to.first()).expect("a To:");
    assert_eq!(to.address(), Some("long@example.org"));
    let shown = to.name().expect("a display name");
    assert!(
        shown.ends_with('…') && name.starts_with(shown.trim_end_matches('…')),
        "{shown}"
    );
    assert_eq!(shown.chars().count(), 101);
    assert!(m.subject().is_some_and(|s| s.contains(&title)));
    let text = m.body_text(0).expect("text");
    assert!(text.contains(&name), "the greeting keeps the whole name");
}

/// The sender's own address follows the same rules: an IDN domain in `[mail] from` goes
/// as punycode; a non-ASCII local part, which a server without SMTPUTF8 can take for
/// nobody, stops the run with the reason and fails no recipient.
#[test]
fn a_from_address_with_an_idn_domain_goes_as_punycode_and_a_utf8_one_stops_the_run() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start_with(dir.path(), 0, &["--no-smtputf8"]);
    let p = project_with_smtp(server.port, 0);
    p.set_config("<pressroom@example.org>", "<pressroom@exämple.org>");
    let err = send(&p, &[]);
    assert!(err.contains("3 sent, 0 deferred"), "{err}");
    let log = std::fs::read_to_string(dir.path().join("smtp.log")).expect("log");
    assert!(
        log.contains("mail_from=pressroom@xn--exmple-cua.org"),
        "{log}"
    );

    let p = project_with_smtp(server.port, 0);
    p.set_config("<pressroom@example.org>", "<prässroom@example.org>");
    let o = p.run(&["send", "du-avgor"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(
            "does not accept internationalised addresses (SMTPUTF8), and [mail] from has one"
        ),
        "{err}"
    );
    let rows = report(&p);
    assert_eq!(rows.len(), 3);
    assert!(
        rows.values().all(|(state, _, _)| state == "queued"),
        "nobody failed, everyone waits: {rows:?}"
    );
}
