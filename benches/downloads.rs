//! `feed.atom` while 16 clients download a 50 MB PDF at once: its latency (p50, p99, max of
//! gzipped GETs, as feed readers ask) alone and during the downloads, and the downloads'
//! throughput. The daemon serves 1,000 releases and one bundle with the PDF; the clients
//! come from four loopback addresses, the feed reader from a fifth.
//!
//!     cargo bench --bench downloads
//!
//! `PRESSROOM_BENCH_SAMPLES` (default 1,000) sets how many feed requests each phase makes.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Corpus, Running, env_or, free_port, ms, percentile};

const RELEASES: usize = 1_000;
const PDF_BYTES: usize = 50_000_000;
const DOWNLOADS: usize = 16;

fn main() {
    let samples = env_or("PRESSROOM_BENCH_SAMPLES", 1_000);
    let binary = common::pressroom_binary("downloads");
    let (_guard, root) = common::bench_dir("pressroom-downloads-bench-");
    let port = free_port();
    write_site(&root, port);
    let mut daemon = Running::start(&binary, &root);
    daemon.wait_serving();
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

    daemon.stop();

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
            "| {what}, {} requests | {:.2} ms | {:.2} ms | {:.2} ms |",
            l.len(),
            ms(percentile(l, 50)),
            ms(percentile(l, 99)),
            ms(l[l.len() - 1])
        );
    }
    println!("| downloads meanwhile | {mb_per_s:.0} MB/s in all over {took:.1?} | | |");
}

/// The site: `RELEASES` releases from 2015 on, and one more the day after the last, a
/// bundle with the PDF.
fn write_site(dir: &Path, port: u16) {
    common::write_site(dir, port, "admin_listen = \"127.0.0.1:0\"\n", 0);
    let corpus = Corpus {
        first_day: chrono::NaiveDate::from_ymd_opt(2015, 1, 1).expect("date"),
        count: RELEASES,
    };
    corpus.write(dir, |_| String::new());
    let day = corpus.day(RELEASES);
    let bundle = dir.join(format!("releases/{day}-rapport"));
    std::fs::create_dir_all(&bundle).expect("bundle");
    let pdf: Vec<u8> = (0..PDF_BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(bundle.join("rapport.pdf"), pdf).expect("pdf");
    std::fs::write(
        bundle.join("index.md"),
        format!(
            "+++\ntitle = \"Rapport\"\ndate = {day}\nmail = false\nattachments = [\"rapport.pdf\"]\n+++\n\nRapporten bifogas.\n"
        ),
    )
    .expect("release");
}
