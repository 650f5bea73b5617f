//! What the benchmarks share: Swedish-looking words for generated text, and reading
//! `/usr/bin/time -v` reports.

// Each bench binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
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
