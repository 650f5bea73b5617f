//! The watcher at the edges (issue 12): a folder under `releases/` the daemon may not read
//! (a root-owned `lost+found`, a symlink into a tree holding one) blinds it to nothing
//! else, `check` names it, and where no watcher can be made at all the daemon rescans
//! periodically and says so. The daemon runs as an unprivileged user here, as systemd's
//! dynamic user runs it: root reads every folder.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::daemon::{Daemon, client, get, sample_served, wait_for};
use super::*;

/// `nobody`: the tests' unprivileged user.
const NOBODY: u32 = 65534;

/// A folder only root may read or enter, as mkfs leaves `lost+found`.
fn root_only_folder(path: &Path) {
    std::fs::create_dir_all(path).expect("mkdir");
    std::fs::write(path.join("#1234"), "a lost inode").expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
}

/// A release dated in the past (public at once) titled `title`.
fn past_release(title: &str) -> String {
    release(
        &format!("title = \"{title}\"\ndate = 2018-10-19\nlang = \"sv\""),
        "Brödtext.",
    )
}

/// Saving a release, a bundle and its edit, and a config edit, each reach the site
/// promptly: what an unreadable folder must not stop.
fn everything_else_is_still_watched(p: &Project, daemon: &Daemon) {
    let http = client();
    let page = |path: &str| get(&http, &daemon.base, path);
    wait_for("the sample release", Duration::from_secs(10), || {
        page(&format!("/releases/{SAMPLE_SLUG}/")).0 == 200
    });

    p.write(
        "releases/2018-10-19-ny-rapport.md",
        past_release("Ny rapport"),
    );
    let took = wait_for("the new release", Duration::from_secs(5), || {
        page("/releases/ny-rapport/").0 == 200
    });
    assert!(took < Duration::from_secs(1), "published after {took:?}");

    // A bundle folder made while running is watched: an edit inside it is seen too.
    p.write(
        "releases/2018-10-20-bundle/index.md",
        past_release("En bunt"),
    );
    wait_for("the new bundle", Duration::from_secs(1), || {
        page("/releases/bundle/").0 == 200
    });
    p.write(
        "releases/2018-10-20-bundle/index.md",
        past_release("En rättad bunt"),
    );
    let took = wait_for("the edit inside the bundle", Duration::from_secs(5), || {
        page("/releases/bundle/").1.contains("En rättad bunt")
    });
    assert!(took < Duration::from_secs(1), "seen after {took:?}");

    p.set_config(
        "title = \"Jämställdhetsmyndigheten – Pressrum\"",
        "title = \"Ett nytt namn på pressrummet\"",
    );
    wait_for("the config edit", Duration::from_secs(5), || {
        page("/").1.contains("Ett nytt namn på pressrummet")
    });
}

/// The log lines that are warnings or errors and name `what`.
fn complaints(daemon: &Daemon, what: &str) -> Vec<String> {
    daemon
        .log()
        .lines()
        .filter(|l| l.contains(what) && (l.contains("WARN") || l.contains("ERROR")))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_unreadable_lost_and_found_leaves_every_other_release_and_the_config_watched() {
    let (p, _port) = sample_served();
    p.give_to(NOBODY);
    root_only_folder(&p.path().join("releases/lost+found"));
    let daemon = Daemon::start_as(&p, NOBODY, &[]);
    everything_else_is_still_watched(&p, &daemon);
    let said = complaints(&daemon, "lost+found");
    assert_eq!(said.len(), 1, "one warning naming it: {said:#?}");
    assert!(
        said[0].contains("WARN") && said[0].contains("cannot be read (permission denied)"),
        "{said:#?}"
    );
    assert!(
        !daemon.log().contains("cannot watch"),
        "no error about watching: {}",
        daemon.log()
    );
}

#[test]
fn a_symlink_to_a_folder_outside_holding_an_unreadable_folder_is_not_followed() {
    let (p, _port) = sample_served();
    // An archive mounted elsewhere, with a folder only root may read.
    let outside = p.path().join("archive");
    p.give_to(NOBODY);
    root_only_folder(&outside.join("2017/private"));
    std::os::unix::fs::symlink(&outside, p.path().join("releases/archive")).expect("symlink");
    let daemon = Daemon::start_as(&p, NOBODY, &[]);
    everything_else_is_still_watched(&p, &daemon);
    assert!(
        complaints(&daemon, "private").is_empty(),
        "nothing behind the link is looked at: {}",
        daemon.log()
    );
    assert!(
        !daemon.log().contains("cannot watch"),
        "no error about watching: {}",
        daemon.log()
    );
}

#[test]
fn check_names_each_unreadable_folder_as_a_warning() {
    let p = Project::sample();
    p.give_to(NOBODY);
    root_only_folder(&p.path().join("releases/lost+found"));
    // A link inside the releases folder to it: named under its own name too.
    std::os::unix::fs::symlink("lost+found", p.path().join("releases/senaste")).expect("symlink");
    let o = p.run_as(NOBODY, &["check"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    for name in ["lost+found", "senaste"] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("releases/{name}:")))
            .unwrap_or_else(|| panic!("check names releases/{name}: {stderr}"));
        assert!(
            line.contains(
                "warning: cannot be read (permission denied); its releases are not published"
            ),
            "{line}"
        );
    }
    // Most often `lost+found` at a mount's root: not an error, or `check` fails on every
    // ext4 mount root.
    assert!(o.status.success(), "{stderr}");
}

/// A process of `user`'s holding inotify resources the kernel counts per user, left as
/// the system sets them: every instance (`fs.inotify.max_user_instances`), so that user's
/// next watcher cannot be made; or every watch (`fs.inotify.max_user_watches`), spread
/// over files in `files`, which it gives back a few at a time when asked. Killed when
/// dropped.
struct InotifyHog {
    child: Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

const HOG: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
mode = sys.argv[1]
fds, held = [], []
if mode == "instances":
    while libc.inotify_init1(0) >= 0:
        pass
else:
    folder = sys.argv[2]
    names = [os.path.join(folder, n).encode() for n in sorted(os.listdir(folder))]
    full = False
    # Every instance but two (the daemon's, and a spare): one watch per file in each.
    while not full:
        fd = libc.inotify_init1(0)
        if fd < 0:
            break
        for name in names:
            wd = libc.inotify_add_watch(fd, name, 4)  # IN_ATTRIB
            if wd < 0:
                full = True
                break
            held.append((fd, wd))
print(ctypes.get_errno(), flush=True)
for line in sys.stdin:
    for _ in range(int(line)):
        fd, wd = held.pop()
        libc.inotify_rm_watch(fd, wd)
    print("freed", flush=True)
"#;

impl InotifyHog {
    /// Uses up `user`'s inotify instances.
    fn instances(user: u32) -> InotifyHog {
        InotifyHog::start(user, &["instances"])
    }

    /// Uses up `user`'s inotify watches, on files it makes in `folder` (which `user` may
    /// read): enough of them that the instances left over hold every watch.
    fn watches(user: u32, folder: &Path) -> InotifyHog {
        let read = |name: &str| -> usize {
            std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
                .expect("an inotify limit")
                .trim()
                .parse()
                .expect("a number")
        };
        let instances = read("max_user_instances").saturating_sub(2).max(1);
        let files = read("max_user_watches") / instances + 1;
        std::fs::create_dir_all(folder).expect("mkdir");
        for n in 0..files {
            std::fs::write(folder.join(n.to_string()), "").expect("a file to watch");
        }
        InotifyHog::start(user, &["watches", folder.to_str().expect("utf-8")])
    }

    fn start(user: u32, args: &[&str]) -> InotifyHog {
        let mut child = Command::new("setpriv")
            .arg(format!("--reuid={user}"))
            .arg(format!("--regid={user}"))
            .args(["--clear-groups", "--", "/usr/bin/python3", "-c", HOG])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut hog = InotifyHog { child, stdout };
        // EMFILE: the instances are used up; ENOSPC: the watches are.
        let errno = hog.line();
        let expected = if args[0] == "instances" { "24" } else { "28" };
        assert_eq!(errno, expected, "the hog stopped for another reason");
        hog
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.stdout, &mut line).expect("the hog's answer");
        line.trim().to_string()
    }

    /// Gives back `n` watches.
    fn free(&mut self, n: usize) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        std::io::Write::write_all(stdin, format!("{n}\n").as_bytes()).expect("ask the hog");
        assert_eq!(self.line(), "freed");
    }
}

impl Drop for InotifyHog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn without_any_watcher_the_daemon_rescans_periodically_and_says_so() {
    // A user of this test's own: the instance limit counts per user.
    const HOGGED: u32 = 64_999;
    let (p, _port) = sample_served();
    p.write("config/pressroom.toml", {
        let config =
            std::fs::read_to_string(p.path().join("config/pressroom.toml")).expect("config");
        let shipped = "\nrescan = \"auto\"\n";
        assert!(
            config.contains("[watch]") && config.contains(shipped),
            "the shipped config's [watch]: {config}"
        );
        config.replace(shipped, "\nrescan = \"1s\"\n")
    });
    p.give_to(HOGGED);
    let socket_path = p.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("socket");
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _hog = InotifyHog::instances(HOGGED);
    let daemon = Daemon::start_as(
        &p,
        HOGGED,
        &[("NOTIFY_SOCKET", socket_path.to_str().expect("utf-8"))],
    );
    let said = complaints(&daemon, "watching failed");
    assert_eq!(said.len(), 1, "said once: {}", daemon.log());
    assert!(said[0].contains("rescanning every 1 s"), "{said:#?}");

    let mut status = String::new();
    let mut buf = [0u8; 4096];
    while !status.contains("rescanning every 1 s") {
        let n = socket.recv(&mut buf).expect("a STATUS with the rescan");
        status = String::from_utf8_lossy(&buf[..n]).into_owned();
    }
    assert!(
        status.contains("STATUS=") && status.contains("watching failed"),
        "{status}"
    );

    let http = client();
    let metrics = get(&http, &daemon.admin(), "/metrics").1;
    assert!(
        metrics.contains("pressroom_rescan_interval_seconds{because=\"watching_failed\"} 1"),
        "{metrics}"
    );

    // No event comes: the rescan finds the release within its interval.
    p.write(
        "releases/2018-10-19-ny-rapport.md",
        past_release("Ny rapport"),
    );
    let took = wait_for("the new release", Duration::from_secs(5), || {
        get(&http, &daemon.base, "/releases/ny-rapport/").0 == 200
    });
    assert!(
        took < Duration::from_millis(2500),
        "published after {took:?}"
    );
    // And a config edit, reloaded by the rescan.
    p.set_config(
        "title = \"Jämställdhetsmyndigheten – Pressrum\"",
        "title = \"Ett nytt namn på pressrummet\"",
    );
    wait_for("the config edit", Duration::from_secs(5), || {
        get(&http, &daemon.base, "/").1.contains("Ett nytt namn")
    });
}

#[test]
fn past_the_inotify_watch_limit_the_daemon_rescans_and_stops_once_there_is_room() {
    // A user of this test's own: the watch limit counts per user.
    const HOGGED: u32 = 64_998;
    let (p, _port) = sample_served();
    for n in 1..=3 {
        p.write(
            &format!("releases/2018-10-2{n}-bunt-{n}/index.md"),
            past_release(&format!("Bunt {n}")),
        );
    }
    p.give_to(HOGGED);
    let mut hog = InotifyHog::watches(HOGGED, &p.path().join("hog"));
    // Room for the releases folder, the config folder and the project folder, and one of
    // the three bundles.
    hog.free(4);
    let daemon = Daemon::start_as(&p, HOGGED, &[]);
    let said = complaints(&daemon, "watching failed");
    assert_eq!(said.len(), 1, "said once: {}", daemon.log());
    assert!(
        said[0].contains("the inotify watch limit is reached")
            && said[0].contains("rescanning every 30 s"),
        "{said:#?}"
    );
    let http = client();
    let admin = daemon.admin();
    let metrics = || get(&http, &admin, "/metrics").1;
    assert!(
        metrics().contains("pressroom_rescan_interval_seconds{because=\"watching_failed\"} 30"),
        "{}",
        metrics()
    );

    // Room again: the next change watches every bundle, and the rescans stop.
    hog.free(10);
    p.write(
        "releases/2018-10-19-ny-rapport.md",
        past_release("Ny rapport"),
    );
    wait_for("the new release", Duration::from_secs(5), || {
        get(&http, &daemon.base, "/releases/ny-rapport/").0 == 200
    });
    wait_for("the rescans stopped", Duration::from_secs(5), || {
        metrics().contains("pressroom_rescan_interval_seconds{because=\"watching_failed\"} 0")
    });
    assert!(
        daemon.log().contains("watching every folder again"),
        "{}",
        daemon.log()
    );
    assert_eq!(complaints(&daemon, "watching failed").len(), 1);
}
