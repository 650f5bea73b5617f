//! What the benchmarks share: Swedish-looking words and a seeded generator for generated
//! text, a site with its corpus and media list for `pressroom run`, starting and stopping
//! that daemon, reading `/usr/bin/time -v` reports and `/proc`, and the figures (median,
//! percentiles) the tables print.

// Each bench binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub const SV_WORDS: &[&str] = &[
    "jämställdhet",
    "myndigheten",
    "regeringen",
    "uppdraget",
    "kvinnor",
    "män",
    "flickor",
    "pojkar",
    "arbetet",
    "rapporten",
    "kommunerna",
    "länsstyrelserna",
    "insatser",
    "förebyggande",
    "våld",
    "stöd",
    "samverkan",
    "utvecklingen",
    "uppföljning",
    "statistiken",
    "visar",
    "att",
    "och",
    "för",
    "med",
    "inom",
    "genom",
    "under",
    "året",
    "nationella",
    "strategin",
    "målen",
    "resultat",
    "analys",
    "kartläggning",
    "verksamheter",
    "organisationer",
    "ekonomisk",
    "självständighet",
    "inflytande",
    "utbildning",
    "hälsa",
    "arbetsmarknaden",
    "lönegapet",
    "föräldraledighet",
    "omsorg",
    "ansvar",
    "viktigt",
    "fortsatt",
    "behöver",
    "stärka",
    "kunskap",
    "metoder",
    "bidrag",
    "projekt",
    "satsningen",
    "Sverige",
    "Göteborg",
    "Stockholm",
    "Malmö",
];

pub fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `h:mm:ss` or `m:ss.ss`.
pub fn parse_elapsed(s: &str) -> Duration {
    let secs = s
        .split(':')
        .try_fold(0.0, |acc, part| part.parse::<f64>().map(|v| acc * 60.0 + v))
        .unwrap_or_else(|_| panic!("cannot read the elapsed time `{s}`"));
    Duration::from_secs_f64(secs)
}

/// Flushes dirty pages first, so that no run pays for writing back the corpus or the output
/// of an earlier run (pressroom syncs the file system it writes to; Hugo does not).
pub fn sync() {
    let _ = Command::new("sync").status();
}

/// The `pressroom` binary that `cargo bench --bench NAME` built: `target/<profile>/pressroom`,
/// beside `target/<profile>/deps/<bench>-<hash>`, the running bench.
pub fn pressroom_binary(bench: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the bench executable's path");
    let name = format!("pressroom{}", std::env::consts::EXE_SUFFIX);
    let found = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file());
    match found {
        Some(p) => p,
        None => {
            eprintln!(
                "error: no {name} binary near {}: run `cargo bench --bench {bench}` (it builds the binary), \
                 or `cargo build --release` first",
                exe.display()
            );
            std::process::exit(2);
        }
    }
}

/// One command run under `/usr/bin/time -v`: what it cost.
pub struct Measured {
    pub wall: Duration,
    pub cpu: Duration,
    pub max_rss_kb: u64,
    pub stderr: String,
    /// Set when the run did not deliver what it should have.
    pub problem: Option<String>,
}

pub fn measure(time_bin: &Path, cmd: Command, report_file: &Path) -> Measured {
    let mut timed = Command::new(time_bin);
    timed
        .arg("-v")
        .arg("-o")
        .arg(report_file)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    let output = timed
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", time_bin.display()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        panic!(
            "{:?} failed ({}):\n{stderr}\n{}",
            cmd.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let text = std::fs::read_to_string(report_file).expect("read the report of /usr/bin/time");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no `{name}` in the report of /usr/bin/time:\n{text}"))
    };
    let seconds = |name: &str| Duration::from_secs_f64(field(name).parse().expect("seconds"));
    Measured {
        wall: parse_elapsed(&field("Elapsed (wall clock) time (h:mm:ss or m:ss):")),
        cpu: seconds("User time (seconds):") + seconds("System time (seconds):"),
        max_rss_kb: field("Maximum resident set size (kbytes):")
            .parse()
            .expect("kilobytes"),
        stderr,
        problem: None,
    }
}

/// Where a bench writes its generated project: `PRESSROOM_BENCH_DIR` (emptied first, and
/// kept afterwards to look at), or a temporary folder removed when the guard drops.
pub fn bench_dir(prefix: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("PRESSROOM_BENCH_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create PRESSROOM_BENCH_DIR");
            (None, dir)
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("create a temporary folder");
            let path = tmp.path().to_path_buf();
            (Some(tmp), path)
        }
    }
}

/// A whole number from the environment variable `name`, or `default` when it is unset or
/// not a number: the knobs for a quicker run.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// Figures.

/// The middle value (the upper one of an even count).
pub fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The `p`th percentile of `sorted` by nearest rank: the smallest value at least `p`
/// percent of the samples are no larger than.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p).div_ceil(100).saturating_sub(1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// A field of a `/proc/<pid>/status` text in kB or as a count (`VmHWM`,
/// `voluntary_ctxt_switches`); 0 when it is missing.
pub fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Generated text.

/// SplitMix64: small, fast, and the same sequence everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

// ---------------------------------------------------------------------------------------
// A site for `pressroom run`.

/// Writes `config/pressroom.toml` for a site served at `127.0.0.1:port`, with `more`
/// appended to its `[http]` table (`admin_listen`, then further tables), and a media list
/// of `rows` generated journalists (none: the header alone).
pub fn write_site(dir: &Path, port: u16, more: &str, rows: usize) {
    std::fs::create_dir_all(dir.join("config")).expect("config dir");
    std::fs::write(
        dir.join("config/pressroom.toml"),
        format!(
            "[site]\ntitle = \"Pressrum\"\nbase_url = \"http://127.0.0.1:{port}/\"\nlang = \"sv\"\n\
             timezone = \"Europe/Stockholm\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n{more}"
        ),
    )
    .expect("config");
    let file = std::fs::File::create(dir.join("config/media.csv")).expect("media");
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "email,name,outlet,lang,topics").expect("header");
    let langs = ["", "sv", "sv-SE", "en", ""];
    let topics = ["", "jamstalldhet", "arbetsliv|utbildning", "halsa", ""];
    for i in 0..rows {
        writeln!(
            w,
            "journalist{i}@example.org,Journalist {i},Tidning {},{},{}",
            i % 997,
            langs[i % langs.len()],
            topics[(i / 5) % topics.len()]
        )
        .expect("row");
    }
    w.flush().expect("flush");
    std::fs::create_dir_all(dir.join("releases")).expect("releases dir");
}

/// Releases one a day from `first_day`, each `releases/<day>-pressmeddelande-<i>.md`: a
/// title of six words and six paragraphs of fifty, the same text on every run.
pub struct Corpus {
    pub first_day: chrono::NaiveDate,
    pub count: usize,
}

impl Corpus {
    pub fn day(&self, i: usize) -> chrono::NaiveDate {
        self.first_day + chrono::Days::new(i as u64)
    }

    pub fn name(&self, i: usize) -> String {
        format!("releases/{}-pressmeddelande-{i}.md", self.day(i))
    }

    /// Writes the releases below `dir`, `mail = false`, each with the front matter lines
    /// `more(i)` gives (empty, or lines that end in a newline).
    pub fn write(&self, dir: &Path, more: impl Fn(usize) -> String) {
        // A linear congruential generator: what these benches' corpora were generated by.
        let mut seed = 0x5EED_u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for i in 0..self.count {
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
                dir.join(self.name(i)),
                format!(
                    "+++\ntitle = \"{title} {i}\"\ndate = {}\nmail = false\n{}+++\n\n{body}",
                    self.day(i),
                    more(i)
                ),
            )
            .expect("release");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The daemon.

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `pressroom run` on the site in `root`, its stderr piped (plain: `NO_COLOR`); killed
/// when dropped, so a bench that panics leaves no daemon behind.
pub struct Running(pub Child);

impl Running {
    pub fn start(binary: &Path, root: &Path) -> Running {
        Running(
            Command::new(binary)
                .arg("--config")
                .arg(root.join("config/pressroom.toml"))
                .arg("run")
                .env("NO_COLOR", "1")
                .stderr(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("start pressroom run"),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the daemon to say it serves, then drains the rest of its stderr so that it
    /// never blocks on a full pipe.
    pub fn wait_serving(&mut self) {
        let stderr = self.0.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = line.expect("stderr line");
            if line.contains("on http://") {
                std::thread::spawn(move || for _ in lines {});
                return;
            }
        }
        panic!("the daemon exited before serving");
    }

    /// SIGTERM, as a service manager stops it; how it exited.
    pub fn stop(mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.0.wait().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
