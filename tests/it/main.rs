//! Integration tests: the real `pressroom` binary run on temporary copies of the project,
//! its output read back from disk and by third-party parsers. One test binary, modules by
//! behaviour (ripgrep's layout).

mod archives;
mod audience;
mod bad_input;
mod browser;
mod build;
mod cli;
mod corrections;
mod crash;
mod daemon;
mod digests;
mod dkim;
mod embargo;
mod feeds;
mod forgery;
mod html;
mod http_edges;
mod identity;
mod incremental;
mod journey;
mod layers;
mod mail;
mod mail_faults;
mod owner;
mod pipeline;
mod preferences;
mod press_kit;
mod search;
mod signup;
mod sim;
mod sim_audience;
mod smtp;
mod smtp_tls;
mod subscribers;
mod systemd;
mod targeting;
mod templates;
mod tokens;
mod topics;
mod unsubscribe;
mod validators;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A throwaway copy of the project: config, media list and releases.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// The shipped sample's title and a few sentences of its body.
pub const SAMPLE_TITLE: &str = "Kampanj mot prostitution och människohandel";
pub const SAMPLE_SLUG: &str = "du-avgor";
pub const SAMPLE_SENTENCES: &[&str] = &[
    "Utan efterfrågan ingen prostitution.",
    "Kampanjen riktar sig till potentiella och aktiva sexköpare.",
    "Filmen visas även i vissa större mataffärer.",
    "Det svenska förbudet mot köp av sexuella tjänster trädde i kraft den 1 januari 1999.",
    "Myndigheten leds av generaldirektör Lena Ag och är placerad i Angereds centrum, Göteborg.",
];

impl Project {
    /// The shipped `config/` and `releases/`, copied.
    pub fn sample() -> Project {
        let p = Project::empty();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&root.join("releases"), &p.path().join("releases"));
        p
    }

    /// The shipped config with no releases.
    pub fn empty() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = Project { dir };
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&root.join("config"), &p.path().join("config"));
        std::fs::create_dir_all(p.path().join("releases")).expect("releases dir");
        // Tests that time mail send it as soon as it is due; `hold` has tests of its own.
        p.set_config("hold = \"2min\"", "hold = \"0s\"");
        // Daemons run side by side: each admin listener on a port of its own.
        p.set_config(
            "admin_listen = \"127.0.0.1:8081\"",
            "admin_listen = \"127.0.0.1:0\"",
        );
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("public")
    }

    /// Replaces `from` by `to` in the project's config file, which must contain it.
    pub fn set_config(&self, from: &str, to: &str) {
        let path = self.path().join("config/pressroom.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        assert!(text.contains(from), "the config has no `{from}`");
        std::fs::write(&path, text.replace(from, to)).expect("config");
    }

    /// The media list replaced by `rows` (after the header).
    pub fn set_media(&self, rows: &[&str]) {
        let mut text = String::from("email,name,outlet,lang,topics\n");
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        self.write("config/media.csv", text);
    }

    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Runs `pressroom --config <copy>/config/pressroom.toml ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pressroom"))
            .arg("--config")
            .arg(self.path().join("config/pressroom.toml"))
            .args(args)
            .output()
            .expect("run pressroom")
    }

    /// Makes the project `user`'s (uid and gid), as a service's folders are its own, and
    /// links the binary into it: the build folder may be closed to other users.
    pub fn give_to(&self, user: u32) {
        let owner = format!("{user}:{user}");
        let ok = Command::new("chown")
            .args(["-R", &owner])
            .arg(self.path())
            .status()
            .expect("chown")
            .success();
        assert!(ok, "chown -R {owner}");
        // Linked after the chown, which would otherwise change the build's own file.
        let bin = self.binary();
        if std::fs::hard_link(env!("CARGO_BIN_EXE_pressroom"), &bin).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_pressroom"), &bin).expect("copy the binary");
        }
    }

    /// Where `give_to` puts the binary.
    pub fn binary(&self) -> PathBuf {
        self.path().join("pressroom")
    }

    /// Runs `pressroom --config <copy>/config/pressroom.toml ARGS` as `user`
    /// (`give_to` first).
    pub fn run_as(&self, user: u32, args: &[&str]) -> Output {
        Command::new("setpriv")
            .arg(format!("--reuid={user}"))
            .arg(format!("--regid={user}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(self.binary())
            .arg("--config")
            .arg(self.path().join("config/pressroom.toml"))
            .args(args)
            .output()
            .expect("run pressroom")
    }

    /// `build --at AT --out OUT`, which must succeed; returns stderr.
    pub fn build_at(&self, at: &str, out: &Path) -> String {
        let o = self.run(&[
            "build",
            "--at",
            at,
            "--out",
            out.to_str().expect("utf-8 path"),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "build failed: {stderr}");
        stderr
    }
}

/// The environment that makes a process's wall clock read `fake` (UTC) and run on from
/// there: libfaketime (Debian's `faketime`, `.ci/install-test-tools.sh`) preloaded, as the
/// `faketime` command does. Preloaded directly rather than through that command, which
/// forks: the process started is then pressroom itself, which a test can signal and kill.
/// The monotonic clock stays true, so timeouts and intervals behave.
pub fn fake_clock(fake: &str) -> Vec<(&'static str, String)> {
    let library = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|l| Path::new(l).exists())
    .expect("libfaketime is installed (apt-get install faketime; .ci/install-test-tools.sh)");
    vec![
        ("LD_PRELOAD", library.to_string()),
        ("FAKETIME", format!("@{fake}")),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
        ("TZ", "UTC".to_string()),
    ]
}

/// Every row of the ledger's record of publications and mail (`state/pressroom.db`), one
/// line each, in a stable order: to show that something recorded nothing.
pub fn ledger_rows(p: &Project) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        p.path().join("state/pressroom.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the ledger");
    let mut rows = Vec::new();
    for table in ["revisions", "notices", "dispatches", "deliveries", "clock"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table}"))
            .expect("select");
        let columns = stmt.column_count();
        let mut found = stmt.query([]).expect("query");
        while let Some(row) = found.next().expect("row") {
            let values: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", row.get_ref(i).expect("value")))
                .collect();
            rows.push(format!("{table}: {}", values.join(", ")));
        }
    }
    rows.sort();
    rows
}

/// What a command wrote to stderr, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A release file with the given front matter lines and body.
pub fn release(front: &str, body: &str) -> String {
    format!("+++\n{front}\n+++\n\n{body}\n")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every file under `dir` (relative path → bytes), the manifest included.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    listed(dir)
        .into_iter()
        .map(|(rel, path)| (rel, std::fs::read(&path).expect("read")))
        .collect()
}

/// The names of the files under `dir` while something may be writing it: a running daemon
/// renames temp files into place, so only names are taken.
pub fn live_names(dir: &Path) -> Vec<String> {
    listed(dir).into_iter().map(|(rel, _)| rel).collect()
}

/// The files under `dir` (relative path with `/`, full path). `dir` itself must be there: a
/// site that was never written is a failure, not a site without files. An entry below it
/// that vanishes between listing and looking is skipped, never an error.
fn listed(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        let listing = match std::fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(e) if dir == root => panic!("cannot list {}: {e}", root.display()),
            Err(_) => return,
        };
        for entry in listing.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(root, &path, out),
                Ok(_) => {
                    if let Ok(rel) = path.strip_prefix(root) {
                        out.push((rel.to_string_lossy().replace('\\', "/"), path));
                    }
                }
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts two sites hold the same files with the same bytes (`what` names the moment).
pub fn assert_same_files(
    got: &BTreeMap<String, Vec<u8>>,
    want: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    assert!(!want.is_empty(), "{what}: no files to compare");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: not the same files"
    );
    for (path, bytes) in want {
        assert!(got[path] == *bytes, "{what}: {path} differs");
    }
}

pub fn text(files: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8(
        files
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing: {:?}", files.keys()))
            .clone(),
    )
    .expect("utf-8")
}

/// Runs openssl (test keys and certificates), which must succeed.
pub fn openssl(args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (install with .ci/install-test-tools.sh)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `items.all(ok)`, except that no items at all is a failure: a test that means "every
/// file" or "every message" proves nothing over none. `what` names the items.
pub fn every<I: IntoIterator>(items: I, what: &str, ok: impl FnMut(I::Item) -> bool) -> bool {
    let mut items = items.into_iter().peekable();
    assert!(items.peek().is_some(), "no {what} to check");
    items.all(ok)
}

/// A message as it goes on the wire: CRLF line ends only, no line over SMTP's 998 octets.
pub fn assert_wire_clean(raw: &[u8]) {
    assert!(!raw.is_empty(), "an empty message");
    assert!(
        !raw.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
        "CRLF line ends only"
    );
    assert!(
        raw.split(|&b| b == b'\n').all(|line| line.len() <= 998),
        "lines fit SMTP"
    );
}

/// A port that was free a moment ago: for a server that must be named before it starts,
/// or that is meant to be down.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
