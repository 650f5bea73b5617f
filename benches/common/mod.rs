//! What the benchmarks share: Swedish-looking words for generated text, and reading
//! `/usr/bin/time -v` reports.

// Each bench binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;
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
