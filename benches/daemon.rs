//! The daemon with 10,000 releases in its folder: how long from a saved file to the new feed
//! served over HTTP (median and p99 of 100 saves), what the idle daemon costs (CPU, wake-ups
//! and memory over 60 seconds), and conditional GETs of `feed.atom` per second from `wrk`.
//!
//!     cargo bench --bench daemon
//!
//! `wrk` (`apt-get install -y wrk`) is optional: without it that row is skipped.
//! `PRESSROOM_BENCH_RELEASES`, `PRESSROOM_BENCH_SAVES` and `PRESSROOM_BENCH_IDLE_SECS` make
//! a quicker run.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Corpus, Running, env_or, free_port, median, ms, percentile, status_field};

fn main() {
    let releases = env_or("PRESSROOM_BENCH_RELEASES", 10_000);
    let saves = env_or("PRESSROOM_BENCH_SAVES", 100);
    let idle_secs = env_or("PRESSROOM_BENCH_IDLE_SECS", 60);
    let binary = common::pressroom_binary("daemon");
    let (_guard, root) = common::bench_dir("pressroom-daemon-bench-");
    let root = root.as_path();
    let port = free_port();
    let corpus = Corpus {
        // One day apart from 1995: 10,000 days end in 2022.
        first_day: chrono::NaiveDate::from_ymd_opt(1995, 1, 1).expect("date"),
        count: releases,
    };
    common::write_site(root, port, "", 0);
    corpus.write(root, |i| {
        let topic = ["jamstalldhet", "arbetsliv", "utbildning", "halsa", "vald"][i % 5];
        format!(
            "topics = [\"{topic}\"]\n\
             contacts = [{{ name = \"Presstjänst\", email = \"press@example.org\" }}]\n"
        )
    });
    eprintln!("{releases} releases written to {}", root.display());

    let started = Instant::now();
    let mut daemon = Running::start(&binary, root);
    daemon.wait_serving();
    let first_build = started.elapsed();
    let base = format!("http://127.0.0.1:{port}");
    // reqwest is built without a TLS provider of its own; plain HTTP needs none, but the
    // builder asks for one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    // Saves: the newest release (it is in the main feed) rewritten the way editors do,
    // a temp file renamed over it, and the feed polled until it shows the change.
    let newest = root.join(corpus.name(releases - 1));
    let original = std::fs::read_to_string(&newest).expect("newest release");
    let mut latencies = Vec::with_capacity(saves);
    for i in 0..saves {
        let marker = format!("Ändring nummer {i} av texten.");
        let text = original.replacen("\n\n", &format!("\n\n{marker}\n\n"), 1);
        let tmp = newest.with_extension("md.tmp");
        std::fs::write(&tmp, text).expect("write");
        let saved = Instant::now();
        std::fs::rename(&tmp, &newest).expect("rename");
        loop {
            let body = http
                .get(format!("{base}/feed.atom"))
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            if body.contains(&marker) {
                break;
            }
            assert!(
                saved.elapsed() < Duration::from_secs(30),
                "save {i} never showed"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(saved.elapsed());
        // Let the build that the poll raced settle before the next save.
        std::thread::sleep(Duration::from_millis(100));
    }
    latencies.sort();
    let p99 = percentile(&latencies, 99);
    let max = latencies[latencies.len() - 1];
    let median = median(latencies);

    // Idle: nothing to do until the next event.
    std::thread::sleep(Duration::from_secs(2));
    let pid = daemon.pid();
    let before = sample(pid);
    std::thread::sleep(Duration::from_secs(idle_secs as u64));
    let after = sample(pid);

    let rps = wrk(&http, &base);
    let exited = daemon.stop();

    println!();
    println!("pressroom run with {releases} releases (first build and serving: {first_build:.2?})");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| saved file → new feed over HTTP, {saves} saves | median {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        ms(median),
        ms(p99),
        ms(max)
    );
    println!(
        "| idle {idle_secs} s: CPU | {:.3} s ({} ticks) |",
        (after.cpu_ticks - before.cpu_ticks) as f64 / ticks_per_second(),
        after.cpu_ticks - before.cpu_ticks
    );
    // Per thread id: a thread that ended meanwhile (tokio retires idle blocking threads)
    // is not counted; one that started counts all its switches.
    let woke: u64 = after
        .switches
        .iter()
        .map(|(tid, n)| n - before.switches.get(tid).copied().unwrap_or(0).min(*n))
        .sum();
    println!(
        "| idle {idle_secs} s: context switches, all threads (wake-ups) | {woke} ({} threads) |",
        after.switches.len()
    );
    println!(
        "| idle: resident memory | {:.1} MiB (peak {:.1} MiB) |",
        after.rss_kb as f64 / 1024.0,
        after.hwm_kb as f64 / 1024.0
    );
    match rps {
        Some((rps, line)) => println!(
            "| conditional GET feed.atom (wrk -t2 -c32 -d10s, 304s) | {rps} req/s ({line}) |"
        ),
        None => {
            println!("| conditional GET feed.atom | skipped: no wrk (apt-get install -y wrk) |")
        }
    }
    println!("| exit on SIGTERM | {exited} |");
}

struct Sample {
    cpu_ticks: u64,
    /// Context switches by thread id: threads come and go (tokio's blocking pool).
    switches: std::collections::HashMap<String, u64>,
    rss_kb: u64,
    hwm_kb: u64,
}

fn sample(pid: u32) -> Sample {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name in parentheses: utime is the 14th, stime the 15th.
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let cpu_ticks = fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    let mut switches = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .flatten()
    {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        switches.insert(
            task.file_name().to_string_lossy().into_owned(),
            status_field(&status, "voluntary_ctxt_switches")
                + status_field(&status, "nonvoluntary_ctxt_switches"),
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    Sample {
        cpu_ticks,
        switches,
        rss_kb: status_field(&status, "VmRSS"),
        hwm_kb: status_field(&status, "VmHWM"),
    }
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

fn wrk(http: &reqwest::blocking::Client, base: &str) -> Option<(String, String)> {
    let which = Command::new("wrk").arg("--version").output().ok()?;
    let _ = which;
    let etag = http
        .get(format!("{base}/feed.atom"))
        .send()
        .ok()?
        .headers()
        .get("etag")?
        .to_str()
        .ok()?
        .to_string();
    let out = Command::new("wrk")
        .args(["-t2", "-c32", "-d10s", "-H"])
        .arg(format!("If-None-Match: {etag}"))
        .arg(format!("{base}/feed.atom"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))?
        .trim()
        .to_string();
    let non2xx = text.lines().find(|l| l.contains("Non-2xx")).map_or_else(
        || "every reply 2xx or 3xx".to_string(),
        |l| l.trim().to_string(),
    );
    Some((rps, non2xx))
}
