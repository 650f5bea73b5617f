//! Build benchmark (SPEC §10): a generated corpus of 10,000 press releases of about 3 KB.
//!
//! Run it with:
//!
//!     cargo bench --bench build
//!
//! Prerequisites (Debian): `apt-get install -y time hugo`. `/usr/bin/time -v` measures the
//! wall time and the peak memory of each full build; Hugo is the yardstick (without it the
//! Hugo rows are skipped). `cargo bench` builds the `pressroom` binary in release mode next
//! to this benchmark, and the benchmark runs that binary.
//!
//! What it measures:
//! 1. a full build by a fresh `pressroom build` process into a new output folder, three
//!    times (median wall time, CPU time and maximum resident set size);
//! 2. a rebuild after one release changes, in-process with `pressroom::build::Builder`: one
//!    full build to warm up, then 20 times: append a sentence to one release, build again;
//! 3. `hugo --quiet` on the same 10,000 releases as a Hugo site with minimal templates and
//!    a 50-item RSS feed per list page, three times.
//!
//! The page cache is warm in every run (the corpus has just been written): "cold" means a
//! new process with no state of its own. Dirty pages are flushed (`sync`) before each timed
//! run, and the outputs of earlier runs are only deleted at the end: ext4 is slower to
//! create inodes right after many were deleted, which made the figures swing 2x.
//!
//! Environment variables for quicker runs: `PRESSROOM_BENCH_RELEASES` (default 10000),
//! `PRESSROOM_BENCH_DIR` (a folder to generate the corpus in instead of a temporary one;
//! emptied first, left in place), `PRESSROOM_BENCH_SKIP_HUGO=1`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use pressroom::build::Builder;
use pressroom::config::Config;

mod common;

use common::{Measured, Rng, SV_WORDS, capitalise, measure, median, mib, ms, sync};

const RELEASES: usize = 10_000;
const FULL_RUNS: usize = 3;
const REBUILD_RUNS: usize = 20;
const AT: &str = "2026-01-01T00:00:00+01:00";
const SEED: u64 = 0x5EED_2018_1018;

fn main() {
    let count = std::env::var("PRESSROOM_BENCH_RELEASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RELEASES);
    let skip_hugo =
        std::env::var_os("PRESSROOM_BENCH_SKIP_HUGO").is_some_and(|v| v != "0" && !v.is_empty());
    let time_bin = Path::new("/usr/bin/time");
    if !time_bin.exists() {
        eprintln!("error: /usr/bin/time is missing: apt-get install -y time");
        std::process::exit(2);
    }
    let pressroom_bin = common::pressroom_binary("build");

    let (_guard, root) = common::bench_dir("pressroom-bench-");

    println!(
        "pressroom build benchmark: {count} releases in {}",
        root.display()
    );
    println!("binary: {}", pressroom_bin.display());
    let started = Instant::now();
    let corpus = generate(count);
    let site = root.join("pressroom");
    let bytes = write_pressroom_site(&site, &corpus);
    println!(
        "corpus: {count} release files, {:.1} MB, {} bytes on average (generated in {:.1} s)",
        bytes as f64 / 1e6,
        bytes / count.max(1) as u64,
        started.elapsed().as_secs_f64()
    );
    let config_path = site.join("config/pressroom.toml");

    // 1. Full builds by a fresh process.
    let mut full = Vec::new();
    for run in 1..=FULL_RUNS {
        let out = root.join(format!("public-{run}"));
        let mut cmd = Command::new(&pressroom_bin);
        cmd.arg("--config")
            .arg(&config_path)
            .args(["build", "--at", AT, "--out"])
            .arg(&out);
        let m = measure(
            time_bin,
            cmd,
            &root.join(format!("time-pressroom-{run}.txt")),
        );
        let files = count_files(&out);
        println!(
            "  pressroom full build {run}/{FULL_RUNS}: {:.2} s wall, {:.2} s CPU, {:.0} MiB, {files} files",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            mib(m.max_rss_kb)
        );
        if let Some(line) = m.stderr.lines().rev().find(|l| l.starts_with("built ")) {
            println!("    {line}");
        }
        full.push((m, files));
    }
    let pressroom_full = median_run(full);

    // 2. Rebuild after one release changes, in-process.
    let rebuild = rebuild_bench(
        &config_path,
        &root.join("public-incremental"),
        &corpus,
        &site,
    );

    // 3. Hugo on the same releases.
    let hugo = if skip_hugo {
        println!("Hugo: skipped (PRESSROOM_BENCH_SKIP_HUGO)");
        None
    } else {
        hugo_bench(time_bin, &root, &corpus)
    };

    report(count, &pressroom_full, &rebuild, hugo.as_ref());
}

// ---------------------------------------------------------------------------------------
// The corpus.

const TOPICS: [&str; 20] = [
    "jamstalldhet",
    "prostitution",
    "manniskohandel",
    "vald-i-nara-relationer",
    "hedersrelaterat-vald",
    "arbetsmarknad",
    "utbildning",
    "halsa",
    "ekonomisk-jamstalldhet",
    "makt-och-inflytande",
    "statistik",
    "forskning",
    "lansstyrelser",
    "kommuner",
    "eu",
    "internationellt",
    "unga",
    "idrott",
    "digitalisering",
    "regeringsuppdrag",
];

const EN_WORDS: &[&str] = &[
    "gender",
    "equality",
    "the",
    "agency",
    "government",
    "women",
    "men",
    "girls",
    "boys",
    "report",
    "municipalities",
    "county",
    "boards",
    "measures",
    "prevention",
    "violence",
    "support",
    "cooperation",
    "development",
    "follow-up",
    "statistics",
    "show",
    "that",
    "and",
    "for",
    "with",
    "within",
    "through",
    "during",
    "year",
    "national",
    "strategy",
    "goals",
    "results",
    "analysis",
    "survey",
    "organisations",
    "economic",
    "independence",
    "influence",
    "education",
    "health",
    "labour",
    "market",
    "pay",
    "gap",
    "parental",
    "leave",
    "care",
    "responsibility",
    "important",
    "continued",
    "needs",
    "strengthen",
    "knowledge",
    "methods",
    "grants",
    "projects",
    "Sweden",
    "Gothenburg",
];

const FIRST_NAMES: &[&str] = &[
    "Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sara", "Per", "Elin", "Mikael", "Lena",
    "Simon", "Petra", "Ahmed", "Fatima", "Jonas",
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
];
const ROLES: &[&str] = &[
    "Pressansvarig",
    "Utredare",
    "Enhetschef",
    "Analytiker",
    "Kommunikatör",
];

/// One generated release, in a form both site generators can be fed.
struct Generated {
    /// `YYYY-MM-DD-words-N`: the file name without `.md`.
    name: String,
    title: String,
    date: NaiveDateTime,
    lang: &'static str,
    topics: Vec<&'static str>,
    contact_name: String,
    contact_role: &'static str,
    contact_phone: String,
    contact_email: String,
    body: String,
}

fn generate(count: usize) -> Vec<Generated> {
    let mut rng = Rng(SEED);
    let first_day = NaiveDate::from_ymd_opt(2019, 1, 1).expect("a valid date");
    let days = (NaiveDate::from_ymd_opt(2025, 12, 31).expect("a valid date") - first_day).num_days()
        as usize;
    (0..count)
        .map(|n| {
            let lang = if rng.chance(85) { "sv" } else { "en" };
            let words = if lang == "sv" { SV_WORDS } else { EN_WORDS };
            let day = first_day + Days::new(rng.below(days + 1) as u64);
            // Office hours: never inside a daylight-saving gap.
            let time =
                NaiveTime::from_hms_opt(rng.range(7, 17) as u32, (rng.below(4) * 15) as u32, 0)
                    .expect("a valid time");
            let date = day.and_time(time);
            let title = capitalise(&phrase(&mut rng, words, 5, 10));
            let slug_words: Vec<String> = title
                .split(' ')
                .take(3)
                .map(ascii_slug)
                .filter(|w| !w.is_empty())
                .collect();
            let name = format!("{}-{}-{n}", day.format("%Y-%m-%d"), slug_words.join("-"));
            let mut topics: Vec<&'static str> = Vec::new();
            for _ in 0..rng.range(1, 3) {
                let t = TOPICS[rng.below(TOPICS.len())];
                if !topics.contains(&t) {
                    topics.push(t);
                }
            }
            let first = rng.pick(FIRST_NAMES);
            let last = rng.pick(LAST_NAMES);
            let contact_email = format!("{}.{}@example.org", ascii_slug(first), ascii_slug(last));
            let contact_phone = format!(
                "070-{:03} {:02} {:02}",
                rng.below(1000),
                rng.below(100),
                rng.below(100)
            );
            let body = body(&mut rng, lang, words, n, first, last, &contact_email);
            Generated {
                name,
                title,
                date,
                lang,
                topics,
                contact_name: format!("{first} {last}"),
                contact_role: rng.pick(ROLES),
                contact_phone,
                contact_email,
                body,
            }
        })
        .collect()
}

fn phrase(rng: &mut Rng, words: &[&str], min: usize, max: usize) -> String {
    let n = rng.range(min, max);
    (0..n)
        .map(|_| rng.pick(words))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sentence(rng: &mut Rng, words: &[&str]) -> String {
    format!("{}.", capitalise(&phrase(rng, words, 8, 18)))
}

fn paragraph(rng: &mut Rng, words: &[&str]) -> String {
    let n = rng.range(3, 5);
    (0..n)
        .map(|_| sentence(rng, words))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ascii_slug(word: &str) -> String {
    word.chars()
        .filter_map(|c| match c {
            'å' | 'ä' | 'Å' | 'Ä' => Some('a'),
            'ö' | 'Ö' => Some('o'),
            'é' | 'É' => Some('e'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// About 2.6 KB of Markdown: paragraphs, a heading, a list, links.
fn body(
    rng: &mut Rng,
    lang: &str,
    words: &[&str],
    n: usize,
    first: &str,
    last: &str,
    email: &str,
) -> String {
    let sv = lang == "sv";
    let mut body = String::with_capacity(3200);
    body.push_str(&paragraph(rng, words));
    body.push_str("\n\n");
    let target = 1300 + rng.below(400);
    while body.len() < target {
        body.push_str(&paragraph(rng, words));
        body.push_str("\n\n");
    }
    let quote = sentence(rng, words);
    if sv {
        let _ = write!(body, "”{quote}”, säger {first} {last}.\n\n## Bakgrund\n\n");
    } else {
        let _ = write!(body, "“{quote}”, says {first} {last}.\n\n## Background\n\n");
    }
    body.push_str(&paragraph(rng, words));
    body.push_str("\n\n");
    for _ in 0..rng.range(3, 5) {
        let _ = writeln!(body, "- {}", capitalise(&phrase(rng, words, 3, 8)));
    }
    let (more, contact) = if sv {
        ("Mer information finns i", "Kontakt")
    } else {
        ("Read more in", "Contact")
    };
    let _ = write!(
        body,
        "\n{more} [{}](https://www.example.org/rapporter/{n}/).\n\n{contact}: {first} {last}, [{email}](mailto:{email})\n",
        capitalise(&phrase(rng, words, 2, 4)),
    );
    body
}

fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[&str]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|t| toml_str(t))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn pressroom_file(r: &Generated) -> String {
    format!(
        "+++\ntitle = {}\ndate = {}\nlang = \"{}\"\ntopics = {}\n\n[[contacts]]\nname = {}\nrole = {}\nphone = {}\nemail = {}\n+++\n\n{}",
        toml_str(&r.title),
        r.date.format("%Y-%m-%dT%H:%M:%S"),
        r.lang,
        toml_list(&r.topics),
        toml_str(&r.contact_name),
        toml_str(r.contact_role),
        toml_str(&r.contact_phone),
        toml_str(&r.contact_email),
        r.body,
    )
}

const PRESSROOM_CONFIG: &str = r#"# Generated by benches/build.rs.
[site]
title = "Jämställdhetsmyndigheten – Pressrum"
base_url = "http://127.0.0.1:8080/"
lang = "sv"
timezone = "Europe/Stockholm"
publish_time = "00:00"
author = "Jämställdhetsmyndigheten"
feed_items = 50

[paths]
releases = "releases"
public = "public"
state = "state"

[mail]
from = "Pressrum <pressroom@example.org>"
reply_to = "press@example.org"
transport = "file"
"#;

/// Writes the project; returns the total size of the release files.
fn write_pressroom_site(dir: &Path, corpus: &[Generated]) -> u64 {
    fs::create_dir_all(dir.join("config")).expect("create config/");
    fs::create_dir_all(dir.join("releases")).expect("create releases/");
    fs::write(dir.join("config/pressroom.toml"), PRESSROOM_CONFIG).expect("write the config");
    let mut total = 0;
    for r in corpus {
        let text = pressroom_file(r);
        total += text.len() as u64;
        fs::write(release_path(dir, r), text).expect("write a release");
    }
    total
}

fn release_path(site: &Path, r: &Generated) -> PathBuf {
    site.join("releases").join(format!("{}.md", r.name))
}

// ---------------------------------------------------------------------------------------
// Measuring a process with /usr/bin/time -v.

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// The run with the median wall time, with the median of each figure.
struct Summary {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: u64,
    files: usize,
}

fn median_run(runs: Vec<(Measured, usize)>) -> Summary {
    Summary {
        wall: median(runs.iter().map(|(m, _)| m.wall).collect()),
        cpu: median(runs.iter().map(|(m, _)| m.cpu).collect()),
        max_rss_kb: median(runs.iter().map(|(m, _)| m.max_rss_kb).collect()),
        files: median(runs.iter().map(|(_, f)| *f).collect()),
    }
}

// ---------------------------------------------------------------------------------------
// The in-process rebuild.

struct Rebuild {
    warm_up: Duration,
    unchanged: Duration,
    times: Vec<Duration>,
    peak_rss_kb: Option<u64>,
}

fn rebuild_bench(config_path: &Path, out: &Path, corpus: &[Generated], site: &Path) -> Rebuild {
    let (config, diags) = Config::load(Some(config_path)).expect("load the generated config");
    assert!(diags.is_empty(), "config warnings: {diags:?}");
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339(AT)
        .expect("a valid instant")
        .to_utc();
    let mut builder = Builder::new(config, out.to_path_buf());

    sync();
    let started = Instant::now();
    let report = builder.build(at).expect("the warm-up build");
    let warm_up = started.elapsed();
    assert_eq!(
        report.errors(),
        0,
        "the corpus has errors: {:?}",
        report.diags.first()
    );
    println!(
        "  in-process full build (warm-up): {:.2} s, {} public, {} written",
        warm_up.as_secs_f64(),
        report.public,
        report.write.written
    );

    let started = Instant::now();
    let report = builder.build(at).expect("a rebuild");
    let unchanged = started.elapsed();
    println!(
        "  rebuild, nothing changed: {:.1} ms ({} written, {} unchanged)",
        ms(unchanged),
        report.write.written,
        report.write.unchanged
    );

    let mut times = Vec::with_capacity(REBUILD_RUNS);
    for run in 0..REBUILD_RUNS {
        // Spread over the corpus: old and new releases, in and out of the feeds.
        let r = &corpus[(run * 7919 + 13) % corpus.len()];
        let path = release_path(site, r);
        let mut text = fs::read_to_string(&path).expect("read a release");
        let extra = if r.lang == "sv" {
            format!("\nTillägg {}: uppgifterna har uppdaterats.\n", run + 1)
        } else {
            format!("\nAddendum {}: the figures have been updated.\n", run + 1)
        };
        text.push_str(&extra);
        fs::write(&path, text).expect("write a release");

        let started = Instant::now();
        let report = builder.build(at).expect("a rebuild");
        let took = started.elapsed();
        assert_eq!(report.errors(), 0);
        if run == 0 {
            println!(
                "  rebuild after one change: {:.1} ms ({} written, {} unchanged)",
                ms(took),
                report.write.written,
                report.write.unchanged
            );
        }
        times.push(took);
    }
    Rebuild {
        warm_up,
        unchanged,
        times,
        peak_rss_kb: vm_hwm_kb(),
    }
}

fn vm_hwm_kb() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Hugo.

fn hugo_version() -> Option<(u32, u32, String)> {
    let out = Command::new("hugo").arg("version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // "hugo v0.111.3+extended linux/amd64 BuildDate=…"
    let v = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor, text))
}

fn hugo_bench(time_bin: &Path, root: &Path, corpus: &[Generated]) -> Option<Summary> {
    let Some((major, minor, version)) = hugo_version() else {
        println!("Hugo: not installed, skipped (apt-get install -y hugo)");
        return None;
    };
    println!("Hugo: {version}");
    // `rssLimit` became `[services.rss] limit` in Hugo 0.114.
    let rss_limit = if (major, minor) >= (0, 114) {
        "[services.rss]\nlimit = 50\n"
    } else {
        "rssLimit = 50\n"
    };
    let site = root.join("hugo");
    write_hugo_site(&site, corpus, rss_limit);
    let mut runs = Vec::new();
    for run in 1..=FULL_RUNS {
        let out = root.join(format!("hugo-public-{run}"));
        let mut cmd = Command::new("hugo");
        cmd.arg("--quiet")
            .arg("--source")
            .arg(&site)
            .arg("-d")
            .arg(&out);
        sync();
        let m = measure(time_bin, cmd, &root.join(format!("time-hugo-{run}.txt")));
        let files = count_files(&out);
        println!(
            "  hugo full build {run}/{FULL_RUNS}: {:.2} s wall, {:.2} s CPU, {:.0} MiB, {files} files",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            mib(m.max_rss_kb)
        );
        runs.push((m, files));
    }
    Some(median_run(runs))
}

const HUGO_SINGLE: &str = r#"<!DOCTYPE html>
<html lang="{{ .Params.lang | default .Site.LanguageCode }}">
<head><meta charset="utf-8"><title>{{ .Title }} – {{ .Site.Title }}</title>
<link rel="canonical" href="{{ .Permalink }}"></head>
<body>
<main>
<h1>{{ .Title }}</h1>
<p><time datetime="{{ .Date.Format "2006-01-02T15:04:05Z07:00" }}">{{ .Date.Format "2 January 2006 15:04" }}</time></p>
{{ .Content }}
<ul>{{ range .Params.tags }}<li><a href="{{ "tags/" | relURL }}{{ . | urlize }}/">{{ . }}</a></li>{{ end }}</ul>
</main>
</body>
</html>
"#;

const HUGO_LIST: &str = r#"<!DOCTYPE html>
<html lang="{{ .Site.LanguageCode }}">
<head><meta charset="utf-8"><title>{{ .Title }} – {{ .Site.Title }}</title>
{{ with .OutputFormats.Get "rss" }}<link rel="alternate" type="application/rss+xml" href="{{ .Permalink }}">{{ end }}</head>
<body>
<main>
<h1>{{ .Title }}</h1>
<ul>
{{ range .Pages }}<li><a href="{{ .Permalink }}">{{ .Title }}</a> <time>{{ .Date.Format "2006-01-02" }}</time></li>
{{ end }}</ul>
</main>
</body>
</html>
"#;

const HUGO_INDEX: &str = r#"<!DOCTYPE html>
<html lang="{{ .Site.LanguageCode }}">
<head><meta charset="utf-8"><title>{{ .Site.Title }}</title>
{{ with .OutputFormats.Get "rss" }}<link rel="alternate" type="application/rss+xml" href="{{ .Permalink }}">{{ end }}</head>
<body>
<main>
<h1>{{ .Site.Title }}</h1>
<ul>
{{ range first 50 .Site.RegularPages.ByDate.Reverse }}<li><a href="{{ .Permalink }}">{{ .Title }}</a> <time>{{ .Date.Format "2006-01-02" }}</time></li>
{{ end }}</ul>
<ul>{{ range .Site.Taxonomies.tags.Alphabetical }}<li><a href="{{ .Page.Permalink }}">{{ .Page.Title }}</a></li>{{ end }}</ul>
</main>
</body>
</html>
"#;

/// Hugo's own RSS template gives a summary only; pressroom's feeds carry the full content.
const HUGO_RSS: &str = r#"{{- $limit := .Site.Config.Services.RSS.Limit -}}
{{- $pages := .Pages -}}
{{- if .IsHome -}}{{- $pages = .Site.RegularPages -}}{{- end -}}
{{- $pages = $pages.ByDate.Reverse | first $limit -}}
{{- printf "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>" | safeHTML }}
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>{{ if not .IsHome }}{{ .Title }} – {{ end }}{{ .Site.Title }}</title>
<link>{{ .Permalink }}</link>
<description>{{ .Site.Title }}</description>
<language>{{ .Site.LanguageCode }}</language>
{{ with .OutputFormats.Get "RSS" }}{{ printf "<atom:link href=%q rel=\"self\" type=%q />" .Permalink .MediaType | safeHTML }}{{ end }}
{{ range $pages }}<item>
<title>{{ .Title }}</title>
<link>{{ .Permalink }}</link>
<pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</pubDate>
<guid>{{ .Permalink }}</guid>
<description>{{ .Content | html }}</description>
</item>
{{ end }}</channel>
</rss>
"#;

fn write_hugo_site(dir: &Path, corpus: &[Generated], rss_limit: &str) {
    let content = dir.join("content/releases");
    let layouts = dir.join("layouts/_default");
    fs::create_dir_all(&content).expect("create content/releases");
    fs::create_dir_all(&layouts).expect("create layouts/_default");
    let config = format!(
        "baseURL = \"http://127.0.0.1:8080/\"\ntitle = \"Jämställdhetsmyndigheten – Pressrum\"\nlanguageCode = \"sv\"\n\
         timeZone = \"Europe/Stockholm\"\ndisableKinds = [\"robotsTXT\", \"404\"]\n{rss_limit}\n[taxonomies]\ntag = \"tags\"\n"
    );
    fs::write(dir.join("config.toml"), config).expect("write config.toml");
    fs::write(layouts.join("single.html"), HUGO_SINGLE).expect("write single.html");
    fs::write(layouts.join("list.html"), HUGO_LIST).expect("write list.html");
    fs::write(layouts.join("rss.xml"), HUGO_RSS).expect("write rss.xml");
    fs::write(dir.join("layouts/index.html"), HUGO_INDEX).expect("write index.html");
    for r in corpus {
        let text = format!(
            "+++\ntitle = {}\ndate = {}\ntags = {}\nlang = \"{}\"\n+++\n\n{}",
            toml_str(&r.title),
            r.date.format("%Y-%m-%dT%H:%M:%S"),
            toml_list(&r.topics),
            r.lang,
            r.body,
        );
        fs::write(content.join(format!("{}.md", r.name)), text).expect("write a Hugo page");
    }
}

// ---------------------------------------------------------------------------------------
// The table.

fn report(count: usize, pressroom: &Summary, rebuild: &Rebuild, hugo: Option<&Summary>) {
    let mut times = rebuild.times.clone();
    times.sort_unstable();
    let median_ms = ms(times[times.len() / 2]);
    let max_ms = ms(*times.last().expect("at least one rebuild"));

    println!();
    println!(
        "Results: {count} releases, median of {FULL_RUNS} runs (cold process, warm page cache)"
    );
    println!(
        "{:<44} {:>9} {:>9} {:>10} {:>8}",
        "", "wall s", "CPU s", "max RSS", "files"
    );
    let row = |name: &str, s: &Summary| {
        println!(
            "{name:<44} {:>9.2} {:>9.2} {:>6.0} MiB {:>8}",
            s.wall.as_secs_f64(),
            s.cpu.as_secs_f64(),
            mib(s.max_rss_kb),
            s.files
        );
    };
    row("pressroom full build", pressroom);
    match hugo {
        Some(h) => {
            row("hugo full build", h);
            println!(
                "{:<44} {:>9.2} {:>9.2} {:>10.2} {:>8.2}",
                "ratio pressroom / hugo",
                pressroom.wall.as_secs_f64() / h.wall.as_secs_f64(),
                pressroom.cpu.as_secs_f64() / h.cpu.as_secs_f64(),
                pressroom.max_rss_kb as f64 / h.max_rss_kb as f64,
                pressroom.files as f64 / h.files as f64,
            );
        }
        None => println!("{:<44} {:>9}", "hugo full build", "skipped"),
    }
    println!();
    println!(
        "pressroom rebuild after one release changes (in-process, {} runs): median {median_ms:.1} ms, max {max_ms:.1} ms",
        times.len()
    );
    println!(
        "  (in-process warm-up full build {:.2} s; rebuild with nothing changed {:.1} ms; peak RSS {})",
        rebuild.warm_up.as_secs_f64(),
        ms(rebuild.unchanged),
        rebuild
            .peak_rss_kb
            .map_or_else(|| "unknown".to_string(), |kb| format!("{:.0} MiB", mib(kb)))
    );
}
