//! The shipped unit file, checked by systemd's own tools: `systemd-analyze verify` finds
//! nothing to say, and `systemd-analyze security` rates its hardening 2.0 or better.

use std::process::Command;

use super::*;

/// The unit with its ExecStart pointed at the binary under test (verify checks it exists).
fn unit(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/pressroom.service"
    ))
    .expect("systemd/pressroom.service");
    assert!(text.contains("ExecStart=/usr/local/bin/pressroom "));
    let path = dir.join("pressroom.service");
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/pressroom", env!("CARGO_BIN_EXE_pressroom")),
    )
    .expect("write unit");
    path
}

fn analyze(args: &[&str], unit: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .expect("systemd-analyze runs (apt-get install systemd; .ci/run does)")
}

#[test]
fn systemd_analyze_verify_has_nothing_to_say_about_the_unit() {
    let dir = tempfile::tempdir().expect("dir");
    let o = analyze(&["verify"], &unit(dir.path()));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_unit_is_hardened_to_an_exposure_of_at_most_2() {
    let dir = tempfile::tempdir().expect("dir");
    let o = analyze(
        &["security", "--offline=yes", "--no-pager"],
        &unit(dir.path()),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let score: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for pressroom.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in: {out}"));
    assert!(score <= 2.0, "exposure {score}: {out}");
}
