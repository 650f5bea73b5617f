//! `feed.atom` while 16 clients download a 50 MB PDF at once: its latency (p50, p99, max of
//! gzipped GETs, as feed readers ask) alone and during the downloads, and the downloads'
//! throughput. The daemon serves 1,000 releases and one bundle with the PDF; the clients
//! come from four loopback addresses, the feed reader from a fifth.
//!
//!     cargo bench --bench downloads
//!
//! `PRESSROOM_BENCH_SAMPLES` (default 1,000) sets how many feed requests each phase makes.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{SV_WORDS, capitalise};

const RELEASES: usize = 1_000;
const PDF_BYTES: usize = 50_000_000;
const DOWNLOADS: usize = 16;

fn main() {
    let samples: usize = std::env::var("PRESSROOM_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let binary = common::pressroom_binary("downloads");
    let (_guard, root) = common::bench_dir("pressroom-downloads-bench-");
    let port = free_port();
    write_site(&root, port);
    let mut daemon = Running(
        Command::new(&binary)
            .arg("--config")
            .arg(root.join("config/pressroom.toml"))
            .arg("run")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start pressroom run"),
    );
    wait_serving(&mut daemon.0);
    let base = format!("http://127.0.0.1:{port}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = |ip: Ipv4Addr| {
        reqwest::blocking::Client::builder()
            .local_address(IpAddr::V4(ip))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    };
    let reader = client(Ipv4Addr::new(127, 0, 3, 100));
    let feed = format!("{base}/feed.atom");
    let feed_bytes = reader
        .get(&feed)
        .send()
        .and_then(|r| r.bytes())
        .expect("feed.atom")
        .len();
    let ask = |n: usize| {
        let mut latencies = Vec::with_capacity(n);
        for _ in 0..n {
            let asked = Instant::now();
            let r = reader
                .get(&feed)
                .header("accept-encoding", "gzip")
                .send()
                .expect("GET feed.atom");
            assert_eq!(r.status().as_u16(), 200);
            r.bytes().expect("feed");
            latencies.push(asked.elapsed());
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.sort();
        latencies
    };
    // Warm: the gzipped copy is made by the first request.
    ask(20);
    let alone = ask(samples);

    let url = format!("{base}/releases/rapport/rapport.pdf");
    let stop = AtomicBool::new(false);
    let downloaded = AtomicU64::new(0);
    let (during, took) = std::thread::scope(|s| {
        for i in 0..DOWNLOADS {
            let (url, stop, downloaded) = (&url, &stop, &downloaded);
            let http = client(Ipv4Addr::new(127, 0, 3, 1 + (i % 4) as u8));
            s.spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                // Each downloads the PDF again and again until the feed is measured.
                while !stop.load(Ordering::Relaxed) {
                    let mut r = http.get(url).send().expect("GET the PDF");
                    assert_eq!(r.status().as_u16(), 200);
                    assert!(r.headers().get("content-encoding").is_none());
                    loop {
                        let n = r.read(&mut buf).expect("body");
                        if n == 0 || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        downloaded.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            });
        }
        // Let every download get going.
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let during = ask(samples);
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        (during, took)
    });
    let mb_per_s = downloaded.load(Ordering::Relaxed) as f64 / 1e6 / took.as_secs_f64();

    let pid = daemon.0.id();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = daemon.0.wait();

    println!();
    println!(
        "pressroom run, {RELEASES} releases, feed.atom {} KB, {DOWNLOADS} downloads of a {} MB PDF",
        feed_bytes / 1000,
        PDF_BYTES / 1_000_000
    );
    println!("| measure | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (what, l) in [
        ("feed.atom (gzip), alone", &alone),
        ("feed.atom (gzip), during the downloads", &during),
    ] {
        println!(
            "| {what}, {} requests | {} ms | {} ms | {} ms |",
            l.len(),
            ms(percentile(l, 50)),
            ms(percentile(l, 99)),
            ms(l[l.len() - 1])
        );
    }
    println!("| downloads meanwhile | {mb_per_s:.0} MB/s in all over {took:.1?} | | |");
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p).div_ceil(100).saturating_sub(1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The daemon, killed if the bench panics.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_serving(daemon: &mut Child) {
    let stderr = daemon.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        if line.contains("on http://") {
            // Keep draining stderr so the daemon never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return;
        }
    }
    panic!("the daemon exited before serving");
}

fn write_site(dir: &Path, port: u16) {
    std::fs::create_dir_all(dir.join("config")).expect("config dir");
    std::fs::write(
        dir.join("config/pressroom.toml"),
        format!(
            "[site]\ntitle = \"Pressrum\"\nbase_url = \"http://127.0.0.1:{port}/\"\nlang = \"sv\"\n\
             timezone = \"Europe/Stockholm\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
             admin_listen = \"127.0.0.1:0\"\n"
        ),
    )
    .expect("config");
    std::fs::write(
        dir.join("config/media.csv"),
        "email,name,outlet,lang,topics\n",
    )
    .expect("media");
    std::fs::create_dir_all(dir.join("releases")).expect("releases dir");
    let mut seed = 0x5EED_u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let day = |i: usize| {
        chrono::NaiveDate::from_ymd_opt(2015, 1, 1).expect("date") + chrono::Days::new(i as u64)
    };
    for i in 0..RELEASES {
        let mut words = |n: usize| {
            (0..n)
                .map(|_| SV_WORDS[next() % SV_WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let title = capitalise(&words(6));
        let body: String = (0..6)
            .map(|_| format!("{}.\n\n", capitalise(&words(50))))
            .collect();
        std::fs::write(
            dir.join(format!("releases/{}-pressmeddelande-{i}.md", day(i))),
            format!(
                "+++\ntitle = \"{title} {i}\"\ndate = {}\nmail = false\n+++\n\n{body}",
                day(i)
            ),
        )
        .expect("release");
    }
    let bundle = dir.join(format!("releases/{}-rapport", day(RELEASES)));
    std::fs::create_dir_all(&bundle).expect("bundle");
    let pdf: Vec<u8> = (0..PDF_BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(bundle.join("rapport.pdf"), pdf).expect("pdf");
    std::fs::write(
        bundle.join("index.md"),
        format!(
            "+++\ntitle = \"Rapport\"\ndate = {}\nmail = false\nattachments = [\"rapport.pdf\"]\n+++\n\nRapporten bifogas.\n",
            day(RELEASES)
        ),
    )
    .expect("release");
}
