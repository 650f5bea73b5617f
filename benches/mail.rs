//! Mail benchmark (SPEC: "mail throughput for 10,000 recipients to a local SMTP sink with
//! the ledger on").
//!
//! Prerequisites (Debian, as root): Postfix's test tools `smtp-sink` and `smtp-source`,
//! GNU time, and strace for the TCP_NODELAY check (optional). Only the two tools are used:
//! stop the Postfix daemon the package starts, so that nothing holds port 25:
//!
//!     apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix time strace
//!     postfix stop
//!
//! Run it with:
//!
//!     cargo bench --bench mail
//!
//! `cargo bench` builds the `pressroom` binary in release mode next to this benchmark, and
//! the benchmark runs that binary, as `pressroom send` is run: a fresh process per dispatch.
//!
//! What it measures, in a generated project (the shipped config with `transport = "smtp"`,
//! `rate = 100000`; one Swedish release; a media list of 10,000 journalists at example.org
//! who take every release):
//! 0. the message size: the issue asks for messages of about 20 KB *as sent* (headers, the
//!    text part and the HTML part, as encoded). The release is sized to that: a sample send
//!    to 50 recipients goes to a sink that dumps what it receives (`smtp-sink -D`), the
//!    Markdown is scaled, and again, until the average message is within 2% of the target.
//!    The sample's figures are printed (average size on the wire, MAIL FROM parameters,
//!    each part's Content-Transfer-Encoding, longest line), and its first message is the one
//!    `smtp-source` sends below;
//! 1. `pressroom send` to `smtp-sink` on 127.0.0.1 (which accepts every message and throws
//!    it away, counting), three times each with `concurrency = 1`, 4 and 16, each with a
//!    fresh `state/` (so a fresh SQLite ledger, `synchronous=FULL`): wall time, CPU time and
//!    maximum resident set size by `/usr/bin/time -v`, messages per second = recipients /
//!    wall time. Each run is verified: `pressroom report --csv` must list every recipient
//!    as `sent`, and the sink must have counted as many messages;
//! 2. the yardstick: `smtp-source` (Postfix's C load generator, one message after another
//!    on each connection, `-d`) to the same sink, 10,000 messages on 1 and on 16 sessions,
//!    with pressroom's own message (as the sink received it in step 0) and with a plain one
//!    of the same size;
//! 3. memory flatness: one send to 1,000 and one to 30,000 recipients at concurrency 16
//!    (beside the 10,000 of step 1);
//! 4. whether the SMTP socket gets TCP_NODELAY: one message sent under
//!    `strace -f -e trace=socket,connect,setsockopt` (skipped without strace).
//!
//! The sink, the load generator and pressroom share the machine: on a small one the sink's
//! CPU time is part of what limits every row alike.
//!
//! Environment variables for quicker runs: `PRESSROOM_BENCH_RECIPIENTS` (default 10000),
//! `PRESSROOM_BENCH_MESSAGE_BYTES` (the size as sent to aim for, default 20000),
//! `PRESSROOM_BENCH_RUNS` (default 3), `PRESSROOM_BENCH_CONCURRENCY` (a comma-separated
//! list, default `1,4,16`), `PRESSROOM_BENCH_SKIP_FLAT=1`, `PRESSROOM_BENCH_SKIP_BASELINE=1`,
//! `PRESSROOM_BENCH_DIR` (a folder to work in instead of a temporary one; emptied first,
//! left in place).

use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{Measured, Rng, SV_WORDS, capitalise, measure, median, mib, sync};

const RECIPIENTS: usize = 10_000;
const RUNS: usize = 3;
const CONCURRENCY: [usize; 3] = [1, 4, 16];
/// Recipients of the memory-flatness runs (besides the main count), at concurrency 16.
const FLAT: [usize; 2] = [1_000, 30_000];
const FLAT_CONCURRENCY: usize = 16;
/// Bytes per message as sent (both parts, encoded, with headers) that the release is sized to.
const MESSAGE_BYTES: usize = 20_000;
/// Recipients of each sizing send.
const SAMPLE_RECIPIENTS: usize = 50;
const SLUG: &str = "mail-benchmark";
const SEED: u64 = 0x5EED_2018_1018;
const SMTP_SINK: &str = "/usr/sbin/smtp-sink";
const SMTP_SOURCE: &str = "/usr/sbin/smtp-source";
const INSTALL: &str = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix time strace && postfix stop";

fn main() {
    let recipients = env_usize("PRESSROOM_BENCH_RECIPIENTS").unwrap_or(RECIPIENTS);
    let runs = env_usize("PRESSROOM_BENCH_RUNS").unwrap_or(RUNS).max(1);
    let concurrencies: Vec<usize> = std::env::var("PRESSROOM_BENCH_CONCURRENCY")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .filter(|&n| n > 0)
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| CONCURRENCY.to_vec());
    let skip_flat = env_flag("PRESSROOM_BENCH_SKIP_FLAT");
    let skip_baseline = env_flag("PRESSROOM_BENCH_SKIP_BASELINE");

    let time_bin = Path::new("/usr/bin/time");
    for tool in [time_bin, Path::new(SMTP_SINK), Path::new(SMTP_SOURCE)] {
        if !tool.exists() {
            eprintln!("error: {} is missing: {INSTALL}", tool.display());
            std::process::exit(2);
        }
    }
    let pressroom = PathBuf::from(env!("CARGO_BIN_EXE_pressroom"));

    let (_guard, root) = common::bench_dir("pressroom-mail-bench-");
    println!(
        "pressroom mail benchmark: {recipients} recipients, concurrency {concurrencies:?}, {runs} runs each, in {}",
        root.display()
    );
    println!("binary: {}", pressroom.display());

    let bench = Bench {
        pressroom: &pressroom,
        time_bin,
        root: &root,
    };
    let target = env_usize("PRESSROOM_BENCH_MESSAGE_BYTES").unwrap_or(MESSAGE_BYTES);
    let (body, sample) = bench.size_release(target);
    println!(
        "release: {} bytes of Markdown; message as sent: {} bytes on average ({}..{}) over {} \
         sample messages (target {target}); MAIL FROM {}; parts {}; longest line {} octets",
        body.len(),
        sample.average,
        sample.smallest,
        sample.largest,
        sample.count,
        sample.mail_args,
        sample.encodings.join(" + "),
        sample.longest_line,
    );
    let main_project = Project::create(&root.join(format!("r{recipients}")), recipients, &body);

    // 1. pressroom send, per concurrency.
    let mut rows = Vec::new();
    for &concurrency in &concurrencies {
        let mut measured = Vec::new();
        for run in 1..=runs {
            let m = bench.send(&main_project, concurrency, &format!("c{concurrency}-{run}"));
            println!(
                "  send, concurrency {concurrency:>2}, run {run}/{runs}: {:.2} s wall, {:>6.0} msg/s, {:.2} s CPU, {:.0} MiB{}",
                m.wall.as_secs_f64(),
                recipients as f64 / m.wall.as_secs_f64(),
                m.cpu.as_secs_f64(),
                mib(m.max_rss_kb),
                m.problem
                    .as_deref()
                    .map_or_else(String::new, |p| format!("  VERIFY FAILED: {p}")),
            );
            measured.push(m);
        }
        rows.push((
            format!("pressroom send, concurrency {concurrency}"),
            summarise(&measured),
        ));
    }

    // 2. The yardstick.
    let mut baseline = Vec::new();
    if skip_baseline {
        println!("smtp-source: skipped (PRESSROOM_BENCH_SKIP_BASELINE)");
    } else {
        let plain = root.join("plain-20k.eml");
        fs::write(&plain, plain_message(sample.average)).expect("write the plain message");
        let plain_len = fs::metadata(&plain).map(|m| m.len()).unwrap_or(0);
        for (file, what) in [
            (
                &sample.file,
                format!("pressroom's message, {} KB", sample.average / 1000),
            ),
            (&plain, format!("plain message, {} KB", plain_len / 1000)),
        ] {
            for sessions in [1, 16] {
                let mut measured = Vec::new();
                for run in 1..=runs {
                    let m = bench.smtp_source(
                        file,
                        sessions,
                        recipients,
                        &format!("s{sessions}-{run}"),
                    );
                    println!(
                        "  smtp-source -s {sessions:>2} ({what}), run {run}/{runs}: {:.2} s wall, {:>6.0} msg/s{}",
                        m.wall.as_secs_f64(),
                        recipients as f64 / m.wall.as_secs_f64(),
                        m.problem
                            .as_deref()
                            .map_or_else(String::new, |p| format!("  VERIFY FAILED: {p}")),
                    );
                    measured.push(m);
                }
                baseline.push((
                    format!("smtp-source -s {sessions} ({what})"),
                    summarise(&measured),
                ));
            }
        }
    }

    // 3. Memory flatness.
    let mut flat: Vec<(usize, Summary)> = Vec::new();
    if let Some((_, s)) = rows
        .iter()
        .zip(&concurrencies)
        .find(|(_, c)| **c == FLAT_CONCURRENCY)
        .map(|(r, _)| r)
    {
        flat.push((recipients, s.clone()));
    }
    if skip_flat {
        println!("memory flatness: skipped (PRESSROOM_BENCH_SKIP_FLAT)");
    } else {
        for n in FLAT {
            let project = Project::create(&root.join(format!("r{n}")), n, &body);
            let m = bench.send(&project, FLAT_CONCURRENCY, &format!("flat-{n}"));
            println!(
                "  send to {n} recipients, concurrency {FLAT_CONCURRENCY}: {:.2} s wall, {:.0} msg/s, {:.2} s CPU, {:.0} MiB{}",
                m.wall.as_secs_f64(),
                n as f64 / m.wall.as_secs_f64(),
                m.cpu.as_secs_f64(),
                mib(m.max_rss_kb),
                m.problem
                    .as_deref()
                    .map_or_else(String::new, |p| format!("  VERIFY FAILED: {p}")),
            );
            flat.push((n, summarise(&[m])));
            let _ = fs::remove_dir_all(&project.dir);
        }
        flat.sort_by_key(|(n, _)| *n);
    }

    // 4. TCP_NODELAY.
    let nodelay = bench.nodelay_check(&main_project);

    let failed = report(recipients, &rows, &baseline, &flat, nodelay.as_deref());
    if failed {
        std::process::exit(1);
    }
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|s| s.trim().parse().ok())
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v != "0" && !v.is_empty())
}

// ---------------------------------------------------------------------------------------
// The generated project.

struct Project {
    dir: PathBuf,
    recipients: usize,
}

impl Project {
    /// The shipped config folder (templates and all), one release, `recipients` journalists.
    fn create(dir: &Path, recipients: usize, body: &str) -> Project {
        let _ = fs::remove_dir_all(dir);
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        copy_dir(&shipped, &dir.join("config"));
        fs::create_dir_all(dir.join("releases")).expect("create releases/");
        fs::write(
            dir.join("releases").join(format!("2018-10-18-{SLUG}.md")),
            release_file(body),
        )
        .expect("write the release");
        fs::write(dir.join("config/media.csv"), media_list(recipients))
            .expect("write the media list");
        Project {
            dir: dir.to_path_buf(),
            recipients,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config/pressroom.toml")
    }

    /// Points the `[mail]` section at the sink, with this concurrency and no rate limit to
    /// speak of; every other setting stays as shipped.
    fn configure(&self, port: u16, concurrency: usize) {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pressroom.toml");
        let text = fs::read_to_string(&shipped).expect("read config/pressroom.toml");
        let ours = format!(
            "transport = \"smtp\"\nurl = \"smtp://127.0.0.1:{port}\"\nrate = 100000\nconcurrency = {concurrency}\n"
        );
        let replaced = [
            "transport",
            "url",
            "rate",
            "concurrency",
            "outbox",
            "user",
            "password_file",
            "password_env",
            "password_credential",
        ];
        let mut out = String::with_capacity(text.len() + ours.len());
        let mut section = String::new();
        let mut written = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                section = trimmed.trim_matches(['[', ']']).trim().to_string();
                out.push_str(line);
                out.push('\n');
                if section == "mail" {
                    out.push_str(&ours);
                    written = true;
                }
                continue;
            }
            let key = trimmed.split('=').next().unwrap_or("").trim();
            if section == "mail" && replaced.contains(&key) {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        if !written {
            out.push_str("\n[mail]\nfrom = \"Pressrum <pressroom@example.org>\"\n");
            out.push_str(&ours);
        }
        fs::write(self.config_path(), out).expect("write the config");
    }

    fn fresh_state(&self) {
        let _ = fs::remove_dir_all(self.dir.join("state"));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("a folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

fn media_list(n: usize) -> String {
    let mut rng = Rng(SEED ^ 0x4D_4544_4941);
    let mut csv = String::with_capacity(n * 64 + 64);
    csv.push_str("email,name,outlet,lang,topics\n");
    for i in 1..=n {
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        let outlet = rng.pick(OUTLETS);
        let _ = writeln!(
            csv,
            "journalist{i:05}@example.org,{first} {last},{outlet} {},,",
            i % 97 + 1
        );
    }
    csv
}

fn release_file(body: &str) -> String {
    format!(
        "+++\n\
         title = \"Ny kartläggning: jämställdheten i landets kommuner\"\n\
         slug = \"{SLUG}\"\n\
         date = 2018-10-18\n\
         lang = \"sv\"\n\
         topics = [\"jamstalldhet\", \"kommuner\"]\n\
         \n\
         [[contacts]]\n\
         name = \"Simon Falk\"\n\
         role = \"Pressansvarig\"\n\
         phone = \"070-784 74 97\"\n\
         email = \"press@jamy.se\"\n\
         +++\n\n{body}"
    )
}

const FIRST_NAMES: &[&str] = &[
    "Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sara", "Per", "Elin", "Mikael", "Lena",
    "Simon", "Petra", "Ahmed", "Fatima", "Jonas", "Åsa", "Örjan",
];
const LAST_NAMES: &[&str] = &[
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Lindberg",
    "Falk",
    "Ali",
    "Berg",
    "Öberg",
];
const OUTLETS: &[&str] = &[
    "Dagbladet Exempel",
    "Radio Exempel",
    "Tidningen Exempel",
    "Lokalnytt",
    "Kvällsposten Exempel",
    "TV Exempel",
];

fn phrase(rng: &mut Rng, min: usize, max: usize) -> String {
    let n = rng.range(min, max);
    (0..n)
        .map(|_| rng.pick(SV_WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sentence(rng: &mut Rng) -> String {
    format!("{}.", capitalise(&phrase(rng, 8, 18)))
}

/// About `bytes` bytes of Swedish-looking Markdown: paragraphs, now and then a heading, a
/// quote or a list, and a link. The same text on every run.
fn release_body(bytes: usize) -> String {
    let mut rng = Rng(SEED);
    let mut body = String::with_capacity(bytes + 1024);
    let mut section = 0;
    while body.len() < bytes {
        for _ in 0..rng.range(3, 5) {
            body.push_str(&sentence(&mut rng));
            body.push(' ');
        }
        body.pop();
        body.push_str("\n\n");
        match rng.below(8) {
            0 => {
                section += 1;
                let _ = write!(
                    body,
                    "## {} {section}\n\n",
                    capitalise(&phrase(&mut rng, 2, 4))
                );
            }
            1 => {
                let _ = write!(
                    body,
                    "”{}”, säger {} {}.\n\n",
                    sentence(&mut rng),
                    rng.pick(FIRST_NAMES),
                    rng.pick(LAST_NAMES)
                );
            }
            2 => {
                for _ in 0..rng.range(3, 5) {
                    let _ = writeln!(body, "- {}", capitalise(&phrase(&mut rng, 3, 8)));
                }
                body.push('\n');
            }
            3 => {
                let _ = write!(
                    body,
                    "Mer information finns i [{}](https://www.example.org/rapporter/{}/).\n\n",
                    capitalise(&phrase(&mut rng, 2, 4)),
                    rng.below(10_000)
                );
            }
            _ => {}
        }
    }
    // Cut at the last word that fits, so that sizing can reach its target.
    let mut cut = bytes.min(body.len());
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(space) = body[..cut].rfind(' ') {
        body.truncate(space);
        body.push_str(".\n");
    }
    body
}

/// A plain ASCII message of about `bytes` bytes for `smtp-source -F`, in lines of 72.
fn plain_message(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 512);
    text.push_str(
        "From: Pressrum <pressroom@example.org>\nTo: journalist@example.org\nSubject: plain 20 KB\n\
         Message-ID: <plain@example.org>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n",
    );
    let line = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 abcdefghi\n";
    while text.len() < bytes {
        text.push_str(line);
    }
    text
}

// ---------------------------------------------------------------------------------------
// What the sink received.

/// Messages as `smtp-sink -D` dumped them, measured as they were on the wire.
struct Sample {
    count: usize,
    /// Bytes between DATA and the final dot, with CRLF line ends and dot-stuffing.
    average: usize,
    smallest: usize,
    largest: usize,
    /// The MAIL FROM parameters of the first message (BODY=8BITMIME or none).
    mail_args: String,
    /// Content-Transfer-Encoding of each part of the first message.
    encodings: Vec<String>,
    longest_line: usize,
    /// The first message, for `smtp-source -F` (LF line ends, not dot-stuffed).
    file: PathBuf,
}

impl Sample {
    /// The dump: per message, smtp-sink's own headers (`X-Client-Addr:` … `X-Rcpt-Args:`, a
    /// `Received:` header with continuation lines), the message, an empty line.
    fn read(dump: &[u8], first_out: &Path) -> Sample {
        let text = String::from_utf8_lossy(dump);
        let mut sizes = Vec::new();
        let mut first: Option<(String, String)> = None;
        let mut longest_line = 0;
        for record in text.split("X-Client-Addr: ").skip(1) {
            let mut lines = record.lines().peekable();
            let mut mail_args = String::new();
            // smtp-sink's headers end after its Received: header and its continuations.
            while let Some(line) = lines.next() {
                if let Some(args) = line.strip_prefix("X-Mail-Args: ") {
                    mail_args = args.to_string();
                }
                if line.starts_with("Received: ") {
                    while lines.peek().is_some_and(|l| l.starts_with('\t')) {
                        lines.next();
                    }
                    break;
                }
            }
            let mut message: Vec<&str> = lines.collect();
            // The empty line smtp-sink appends after each message.
            if message.last() == Some(&"") {
                message.pop();
            }
            let wire: usize = message
                .iter()
                .map(|l| l.len() + 2 + usize::from(l.starts_with('.')))
                .sum();
            longest_line = message
                .iter()
                .map(|l| l.len())
                .fold(longest_line, usize::max);
            sizes.push(wire);
            if first.is_none() {
                let mut body = message.join("\n");
                body.push('\n');
                first = Some((mail_args, body));
            }
        }
        let (mail_args, first) = first.expect("at least one message in the dump");
        fs::write(first_out, &first).expect("write the sample message");
        let encodings = first
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("Content-Transfer-Encoding")
                    .then(|| value.trim().to_string())
            })
            .collect();
        Sample {
            count: sizes.len(),
            average: sizes.iter().sum::<usize>() / sizes.len(),
            smallest: sizes.iter().copied().min().unwrap_or(0),
            largest: sizes.iter().copied().max().unwrap_or(0),
            mail_args,
            encodings,
            longest_line,
            file: first_out.to_path_buf(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The sink.

/// `smtp-sink` on a free port of 127.0.0.1, counting (`-c`) what it accepts and discards.
struct Sink {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Sink {
    fn start(out: &Path) -> Sink {
        Sink::spawn(out, None)
    }

    /// A sink that also appends every message it accepts to `dump` (`-D`).
    fn start_dumping(out: &Path, dump: &Path) -> Sink {
        Sink::spawn(out, Some(dump))
    }

    fn spawn(out: &Path, dump: Option<&Path>) -> Sink {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = Command::new(SMTP_SINK);
        cmd.arg("-c");
        if running_as_root() {
            // Required as root: it drops to this user after opening the socket.
            cmd.args(["-u", "nobody"]);
        }
        if let Some(dump) = dump {
            cmd.arg("-D").arg(dump);
        }
        let file = fs::File::create(out).expect("create the sink's output file");
        let child = cmd
            .arg(format!("127.0.0.1:{port}"))
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a second handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SMTP_SINK}: {e}"));
        let sink = Sink {
            child,
            port,
            out: out.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "smtp-sink does not listen on port {port}: {}",
                fs::read_to_string(out).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sink
    }

    /// Stops the sink; returns the number of messages it accepted.
    fn stop(mut self) -> u64 {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        // "sess=17 quit=17 mesg=10000", rewritten in place with \r.
        text.rsplit("mesg=")
            .next()
            .and_then(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// The runs.

struct Bench<'a> {
    pressroom: &'a Path,
    time_bin: &'a Path,
    root: &'a Path,
}

impl Bench<'_> {
    fn pressroom(&self, project: &Project) -> Command {
        let mut cmd = Command::new(self.pressroom);
        cmd.arg("--config").arg(project.config_path());
        cmd.current_dir(&project.dir);
        cmd
    }

    /// Sizes the release so that messages as sent average `target` bytes: sample sends,
    /// scaling the Markdown between them (the size is affine in it: headers plus the parts).
    /// Returns the Markdown and the sample of the last send.
    fn size_release(&self, target: usize) -> (String, Sample) {
        let dir = self.root.join("sizing");
        let mut tried: Vec<(usize, usize)> = Vec::new();
        let mut markdown = target / 2;
        let mut best: Option<(String, Sample)> = None;
        for round in 0..6 {
            let body = release_body(markdown);
            let project = Project::create(&dir, SAMPLE_RECIPIENTS, &body);
            let sample = self.sample(&project, &format!("sizing-{round}"));
            tried.push((body.len(), sample.average));
            let off = sample.average.abs_diff(target);
            let closer = best
                .as_ref()
                .is_none_or(|(_, b)| off < b.average.abs_diff(target));
            if closer {
                best = Some((body, sample));
            }
            if off * 50 <= target {
                break;
            }
            // The next guess: along the line through the last two points (the first step
            // assumes the message is all Markdown-made).
            let (m1, s1) = tried[tried.len() - 1];
            let slope = match tried.len() {
                1 => s1 as f64 / m1 as f64,
                n => {
                    let (m0, s0) = tried[n - 2];
                    (s1 as f64 - s0 as f64) / (m1 as f64 - m0 as f64)
                }
            };
            let slope = if slope.is_finite() && slope > 0.1 {
                slope
            } else {
                1.0
            };
            let next = m1 as f64 + (target as f64 - s1 as f64) / slope;
            markdown = next.max(500.0) as usize;
        }
        let _ = fs::remove_dir_all(&dir);
        best.expect("at least one sizing round")
    }

    /// Sends the release to the project's recipients through a sink that dumps what it
    /// receives, and reads the dump back.
    fn sample(&self, project: &Project, name: &str) -> Sample {
        let dumps = self.root.join(format!("dump-{name}"));
        let _ = fs::remove_dir_all(&dumps);
        fs::create_dir_all(&dumps).expect("create the dump folder");
        // smtp-sink drops to `nobody` before it opens the dump file.
        let _ = Command::new("chmod").arg("777").arg(&dumps).status();
        let dump = dumps.join("messages");
        let sink = Sink::start_dumping(&self.root.join(format!("sink-{name}.txt")), &dump);
        // One connection, so that no two messages can interleave in the dump.
        project.configure(sink.port, 1);
        project.fresh_state();
        let out = self
            .pressroom(project)
            .args(["send", SLUG])
            .output()
            .expect("run pressroom send");
        let accepted = sink.stop();
        assert!(
            out.status.success() && accepted == project.recipients as u64,
            "the sizing send failed (the sink accepted {accepted}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        project.fresh_state();
        let text = fs::read(&dump).expect("read the sink's dump");
        let sample = Sample::read(&text, &self.root.join("pressroom-message.eml"));
        assert_eq!(
            sample.count, project.recipients,
            "messages in the sink's dump"
        );
        let _ = fs::remove_dir_all(&dumps);
        sample
    }

    /// One `pressroom send` to a fresh sink with a fresh ledger, verified.
    fn send(&self, project: &Project, concurrency: usize, name: &str) -> Measured {
        let sink = Sink::start(&self.root.join(format!("sink-{name}.txt")));
        project.configure(sink.port, concurrency);
        project.fresh_state();
        sync();
        let mut cmd = self.pressroom(project);
        cmd.args(["send", SLUG]);
        let mut m = measure(
            self.time_bin,
            cmd,
            &self.root.join(format!("time-send-{name}.txt")),
        );
        let accepted = sink.stop();
        let (rows, sent) = self.ledger_sent(project);
        let n = project.recipients;
        if rows != n || sent != n || accepted != n as u64 {
            m.problem = Some(format!(
                "ledger {sent} sent of {rows} rows, sink accepted {accepted}, expected {n}; pressroom said: {}",
                m.stderr.trim()
            ));
        }
        m
    }

    /// `pressroom report --csv`: (rows, rows `sent`).
    fn ledger_sent(&self, project: &Project) -> (usize, usize) {
        let out = self
            .pressroom(project)
            .args(["report", SLUG, "--csv"])
            .output()
            .expect("run pressroom report");
        assert!(
            out.status.success(),
            "pressroom report failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
        let state = reader
            .headers()
            .expect("a CSV header")
            .iter()
            .position(|h| h == "state")
            .expect("a state column");
        let mut rows = 0;
        let mut sent = 0;
        for record in reader.records() {
            let record = record.expect("a CSV record");
            rows += 1;
            if record.get(state) == Some("sent") {
                sent += 1;
            }
        }
        (rows, sent)
    }

    /// `smtp-source -d -s SESSIONS -m COUNT -F FILE` to a fresh sink.
    fn smtp_source(&self, file: &Path, sessions: usize, count: usize, name: &str) -> Measured {
        let sink = Sink::start(&self.root.join(format!("sink-source-{name}.txt")));
        let mut cmd = Command::new(SMTP_SOURCE);
        cmd.args(["-d", "-s", &sessions.to_string(), "-m", &count.to_string()])
            .args([
                "-f",
                "pressroom@example.org",
                "-t",
                "journalist@example.org",
            ])
            .arg("-F")
            .arg(file)
            .arg(format!("127.0.0.1:{}", sink.port));
        let mut m = measure(
            self.time_bin,
            cmd,
            &self.root.join(format!("time-source-{name}.txt")),
        );
        let accepted = sink.stop();
        if accepted != count as u64 {
            m.problem = Some(format!("the sink accepted {accepted} of {count}"));
        }
        m
    }

    /// One message sent under strace: does the SMTP socket get TCP_NODELAY?
    fn nodelay_check(&self, project: &Project) -> Option<String> {
        let strace = ["/usr/bin/strace", "/bin/strace"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists());
        let Some(strace) = strace else {
            println!("TCP_NODELAY check: skipped (no strace: apt-get install -y strace)");
            return None;
        };
        let sink = Sink::start(&self.root.join("sink-strace.txt"));
        let sink_port = sink.port;
        project.configure(sink_port, 1);
        project.fresh_state();
        let log = self.root.join("strace-send.txt");
        let status = Command::new(strace)
            .args(["-f", "-qq", "-e", "trace=socket,connect,setsockopt", "-o"])
            .arg(&log)
            .arg(self.pressroom)
            .arg("--config")
            .arg(project.config_path())
            .args(["send", SLUG, "--to", "journalist00001@example.org"])
            .current_dir(&project.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let accepted = sink.stop();
        project.fresh_state();
        if !status.is_ok_and(|s| s.success()) || accepted != 1 {
            return Some(format!(
                "inconclusive (strace run failed or the sink got {accepted} messages)"
            ));
        }
        let text = fs::read_to_string(&log).unwrap_or_default();
        let port = format!("htons({sink_port})");
        let connects = text
            .lines()
            .filter(|l| l.contains("connect(") && l.contains(&port))
            .count();
        let nodelay: Vec<&str> = text.lines().filter(|l| l.contains("TCP_NODELAY")).collect();
        Some(if nodelay.is_empty() {
            format!(
                "NOT set: {connects} connect() to the sink and no setsockopt(TCP_NODELAY) (strace log: {})",
                log.display()
            )
        } else {
            format!(
                "set: {} ({connects} connect() to the sink)",
                nodelay
                    .iter()
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }
}

// ---------------------------------------------------------------------------------------
// Measuring a process with /usr/bin/time -v.

/// The median of each figure over the runs.
#[derive(Clone)]
struct Summary {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: u64,
    failures: usize,
}

fn summarise(runs: &[Measured]) -> Summary {
    Summary {
        wall: median(runs.iter().map(|m| m.wall).collect()),
        cpu: median(runs.iter().map(|m| m.cpu).collect()),
        max_rss_kb: median(runs.iter().map(|m| m.max_rss_kb).collect()),
        failures: runs.iter().filter(|m| m.problem.is_some()).count(),
    }
}

// ---------------------------------------------------------------------------------------
// The table.

/// Prints the results; says whether any run failed its verification.
fn report(
    recipients: usize,
    rows: &[(String, Summary)],
    baseline: &[(String, Summary)],
    flat: &[(usize, Summary)],
    nodelay: Option<&str>,
) -> bool {
    println!();
    println!(
        "Results: {recipients} messages to smtp-sink on 127.0.0.1, median of the runs (ledger on, fresh state per run)"
    );
    println!(
        "{:<48} {:>8} {:>8} {:>9} {:>7} {:>10} {:>9}",
        "", "wall s", "msg/s", "ms/msg", "CPU s", "max RSS", "verified"
    );
    let row = |name: &str, s: &Summary| {
        let wall = s.wall.as_secs_f64();
        println!(
            "{name:<48} {wall:>8.2} {:>8.0} {:>9.3} {:>7.2} {:>6.0} MiB {:>9}",
            recipients as f64 / wall,
            wall * 1000.0 / recipients as f64,
            s.cpu.as_secs_f64(),
            mib(s.max_rss_kb),
            if s.failures == 0 {
                "ok".to_string()
            } else {
                format!("{} FAILED", s.failures)
            }
        );
    };
    for (name, s) in rows.iter().chain(baseline) {
        row(name, s);
    }
    println!("(CPU s: user + system time of pressroom or smtp-source; the sink's is not counted)");
    if !flat.is_empty() {
        println!();
        println!("Peak memory of pressroom send, concurrency {FLAT_CONCURRENCY}:");
        for (n, s) in flat {
            println!(
                "  {n:>6} recipients: {:>6.0} MiB max RSS, {:.2} s wall, {:.0} msg/s, {:.2} s CPU{}",
                mib(s.max_rss_kb),
                s.wall.as_secs_f64(),
                *n as f64 / s.wall.as_secs_f64(),
                s.cpu.as_secs_f64(),
                if s.failures == 0 {
                    ""
                } else {
                    "  (VERIFY FAILED)"
                }
            );
        }
    }
    if let Some(nodelay) = nodelay {
        println!();
        println!("TCP_NODELAY on the SMTP socket: {nodelay}");
    }
    rows.iter()
        .chain(baseline)
        .map(|(_, s)| s)
        .chain(flat.iter().map(|(_, s)| s))
        .any(|s| s.failures > 0)
}
