//! The daemon with a media list of 1,000,000 rows: a release lifts a few seconds after the
//! start and its mail is queued for everyone it targets. Reported: the daemon's peak
//! resident memory (VmHWM) once the mail is queued, the longest turn of its event loop
//! (the daemon logs every turn longer than 100 ms: "event loop busy"), and the longest
//! wait for `/healthz` seen from outside (probed every 10 ms; HTTP runs on the runtime's
//! workers, so it may answer while the loop is busy).
//!
//!     cargo bench --bench media
//!
//! `PRESSROOM_BENCH_ROWS` makes a quicker run. Mail is held (`[dispatch] hold = "1h"`):
//! the point is reading the list and queueing, not sending.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{Running, env_or, free_port, status_field};

fn main() {
    let rows = env_or("PRESSROOM_BENCH_ROWS", 1_000_000);
    let binary = common::pressroom_binary("media");
    let (_guard, root) = common::bench_dir("pressroom-media-bench-");
    let root = root.as_path();
    let (port, admin) = (free_port(), free_port());
    // The release lifts at the first whole second at least 6 s from now.
    let lift = pressroom::clock::now() + chrono::TimeDelta::seconds(7);
    let lift = lift - chrono::TimeDelta::nanoseconds(i64::from(lift.timestamp_subsec_nanos()));
    write_site(root, rows, port, admin, lift);
    let csv_bytes = std::fs::metadata(root.join("config/media.csv"))
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "{rows} rows ({:.1} MB) written to {}",
        csv_bytes as f64 / 1e6,
        root.display()
    );

    let started = Instant::now();
    let mut daemon = Running::start(&binary, root);
    let pid = daemon.pid();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (lines_tx, lines) = mpsc::channel::<String>();
    {
        let stderr = daemon.0.stderr.take().expect("stderr");
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().expect("log").push(line.clone());
                let _ = lines_tx.send(line);
            }
        });
    }
    // /healthz every 10 ms, from the first answer on: the longest time without an answer.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || probe(port, &stop))
    };
    // Queued: the daemon says how many deliveries the publication queued.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut queued = None;
    while Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if let Some(n) = queued_count(&line) {
            queued = Some((n, started.elapsed()));
            break;
        }
    }
    // Let a turn that is still running finish and be logged.
    std::thread::sleep(Duration::from_secs(2));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let (hwm, rss) = (
        status_field(&status, "VmHWM"),
        status_field(&status, "VmRSS"),
    );
    stop.store(true, Ordering::Relaxed);
    let (probes, longest_wait) = prober.join().expect("prober");
    let exited = daemon.stop();
    let log = log.lock().expect("log").clone();
    let busy: Vec<u64> = log.iter().filter_map(|l| busy_ms(l)).collect();
    let longest_turn = busy.iter().max().copied();

    println!();
    println!(
        "pressroom run with a media list of {rows} rows ({:.1} MB); mail held, not sent",
        csv_bytes as f64 / 1e6
    );
    println!("| measure | value |");
    println!("|---|---|");
    match queued {
        Some((n, at)) => println!("| deliveries queued | {n} ({at:.1?} after start) |"),
        None => println!("| deliveries queued | NEVER (within 600 s) |"),
    }
    println!(
        "| peak resident memory (VmHWM) | {:.1} MiB (now {:.1} MiB) |",
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    println!(
        "| longest event-loop turn (logged when > 100 ms) | {} ({} turns > 100 ms) |",
        longest_turn.map_or("none over 100 ms".to_string(), |ms| format!("{ms} ms")),
        busy.len()
    );
    println!(
        "| longest wait for /healthz ({probes} probes every 10 ms) | {} ms |",
        longest_wait.as_millis()
    );
    println!("| exit on SIGTERM | {exited} |");
    for line in log.iter().filter(|l| l.contains("event loop busy")) {
        eprintln!("{line}");
    }
    if queued.is_none() {
        for line in log.iter().rev().take(20).rev() {
            eprintln!("{line}");
        }
    }
}

/// How many deliveries a "published"/"queued" log line reports, in either form the daemon
/// has written: `mail=Queued(N)` or `queued=N`.
fn queued_count(line: &str) -> Option<usize> {
    if let Some(rest) = line.split("Queued(").nth(1) {
        return rest.split(')').next()?.parse().ok();
    }
    if line.contains("mail queued") {
        let rest = line.split("queued=").nth(1)?;
        return rest
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok();
    }
    None
}

/// The duration of an "event loop busy" line, in ms.
fn busy_ms(line: &str) -> Option<u64> {
    if !line.contains("event loop busy") {
        return None;
    }
    let rest = line.split("ms=").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Probes `/healthz` every 10 ms until `stop`; returns how many probes were answered and
/// the longest time between two answers (from the first answer on).
fn probe(port: u16, stop: &AtomicBool) -> (usize, Duration) {
    let mut last: Option<Instant> = None;
    let (mut answered, mut longest) = (0, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let ok = healthz(port);
        let now = Instant::now();
        if ok {
            if let Some(last) = last {
                longest = longest.max(now - last);
            }
            last = Some(now);
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (answered, longest)
}

/// One plain HTTP/1.1 GET of `/healthz` on a new connection; whether it answered 200.
fn healthz(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut first = String::new();
    let _ = BufReader::new(s).read_line(&mut first);
    first.contains(" 200 ")
}

/// The site with `rows` journalists on its media list and one release (topic
/// `jamstalldhet`), public at `lift`.
fn write_site(dir: &Path, rows: usize, port: u16, admin: u16, lift: chrono::DateTime<chrono::Utc>) {
    common::write_site(
        dir,
        port,
        &format!(
            "admin_listen = \"127.0.0.1:{admin}\"\n\n[mail]\nfrom = \"Pressrum <press@example.org>\"\n\
             transport = \"file\"\n\n[dispatch]\nhold = \"1h\"\n"
        ),
        rows,
    );
    std::fs::write(
        dir.join("releases/lyft.md"),
        format!(
            "+++\ntitle = \"Ett pressmeddelande\"\ndate = {}\ntopics = [\"jamstalldhet\"]\n\
             contacts = [{{ name = \"Presstjänst\", email = \"press@example.org\" }}]\n+++\n\n\
             Jämställdhet är viktigt.\n",
            lift.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    )
    .expect("release");
}
