//! Search benchmark: query latency at 10,000 releases (issue 13). A generated corpus of
//! 10,000 releases of about 3 KB of Swedish-looking text is built once by the real
//! `Builder`; the index it writes (`public/.search-index.json`) is read as the daemon reads
//! it, and queries run through `search::Index::search`, the function `/search` calls.
//! Reports the index's size and load time, and p50/p99/max of a one-word and a three-word
//! query (and of a word found nowhere, the whole scan with no results to rank).
//!
//! `cargo bench --bench search` (about a minute: most of it is the build).

mod common;

use std::time::{Duration, Instant};

use common::{Rng, SV_WORDS, capitalise, env_or, ms, percentile};
use pressroom::search::{Index, Query};

const TOPICS: [&str; 8] = [
    "Jämställdhet",
    "Prostitution",
    "Människohandel",
    "Arbetsmarknad",
    "Utbildning",
    "Hälsa",
    "Statistik",
    "Forskning",
];

fn main() {
    let count = env_or("PRESSROOM_BENCH_RELEASES", 10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = pressroom::config::Config::defaults(dir.path());
    std::fs::create_dir_all(&config.paths.releases).expect("releases");
    let mut rng = Rng(13);
    let words = |rng: &mut Rng, n: usize| {
        (0..n)
            .map(|_| rng.pick(SV_WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut bytes = 0;
    for i in 0..count {
        let title = capitalise(&words(&mut rng, 6));
        let topics = format!("\"{}\", \"{}\"", rng.pick(&TOPICS), rng.pick(&TOPICS));
        let body: Vec<String> = (0..6)
            .map(|_| capitalise(&words(&mut rng, 60)) + ".")
            .collect();
        let day = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("day")
            + chrono::TimeDelta::days((i % 9000) as i64);
        let text = format!(
            "+++\ntitle = \"{title} {i}\"\ndate = {day}\ntopics = [{topics}]\n+++\n\n{}\n",
            body.join("\n\n")
        );
        bytes += text.len();
        std::fs::write(config.paths.releases.join(format!("r{i}.md")), text).expect("write");
    }
    println!(
        "corpus: {count} releases, {} bytes on average",
        bytes / count
    );
    let out = dir.path().join("public");
    let started = Instant::now();
    let mut builder = pressroom::build::Builder::new(config, out.clone());
    let at = "2030-01-01T00:00:00Z".parse().expect("instant");
    let report = builder.build(at).expect("build");
    println!(
        "build: {} public in {:.1} s",
        report.public,
        started.elapsed().as_secs_f64()
    );

    let path = out.join(pressroom::search::INDEX);
    let started = Instant::now();
    let file = std::fs::read(&path).expect("the index");
    let index = Index::from_bytes(&file);
    println!(
        "index: {:.1} MB, read and parsed in {} ms, {} entries",
        file.len() as f64 / 1e6,
        started.elapsed().as_millis(),
        index.entries.len()
    );
    assert_eq!(index.entries.len(), count);

    let now = "2030-01-01T00:00:00Z".parse().expect("now");
    for q in [
        "jämställdhet",
        "LÖNEGAPET",
        "myndigheten rapporten kommunerna",
        "Människohandel statistiken våld",
        "ingenstansord",
    ] {
        let query = Query::parse(q);
        let mut times: Vec<Duration> = Vec::new();
        let mut total = 0;
        for run in 0..300 {
            let started = Instant::now();
            let found = index.search(&query, now, 1 + run % 3);
            times.push(started.elapsed());
            total = found.total;
        }
        times.sort();
        println!(
            "query {q:?} ({} words, {total} found): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            query.words.len(),
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99)),
            ms(times[times.len() - 1])
        );
    }
}
