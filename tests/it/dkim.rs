//! DKIM: messages sent through the real SMTP server carry a signature that dkimpy, an
//! independent implementation, verifies (tests/dkim/verify.py, the public key served through
//! its DNS hook), for RSA keys in both PEM forms and for Ed25519. Keys are made by openssl
//! at test time.

use std::process::Command;

use super::smtp::{SmtpServer, project_with_smtp};
use super::*;

const SELECTOR: &str = "press2026";

/// A fresh private key at `dir/name.pem` (made by `genkey`, where `OUT` stands for that
/// path) and its public key at `dir/name.pub`.
fn keypair(dir: &Path, name: &str, genkey: &[&str]) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let out = key.to_str().expect("utf-8 path");
    let args: Vec<&str> = genkey
        .iter()
        .map(|a| if *a == "OUT" { out } else { a })
        .collect();
    openssl(&args);
    openssl(&[
        "pkey",
        "-in",
        key.to_str().expect("utf-8 path"),
        "-pubout",
        "-out",
        public.to_str().expect("utf-8 path"),
    ]);
    (key, public)
}

/// Adds `dkim_key` and `dkim_selector` to the project's `[mail]`.
fn configure_dkim(p: &Project, key: &Path) {
    let config = p.path().join("config/pressroom.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        "[mail]\n",
        &format!(
            "[mail]\ndkim_key = \"{}\"\ndkim_selector = \"{SELECTOR}\"\n",
            key.display()
        ),
        1,
    );
    std::fs::write(&config, text).expect("config");
}

/// dkimpy's verdict on each file; panics with its reasons unless every one verified.
fn verify(public: &Path, messages: &[PathBuf]) -> String {
    let o = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dkim/verify.py"))
        .arg("--key")
        .arg(format!(
            "{SELECTOR}._domainkey.example.org={}",
            public.display()
        ))
        .args(messages)
        .output()
        .expect("python3 runs tests/dkim/verify.py");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "dkimpy did not verify: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn stored(server: &SmtpServer) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(server.maildir.join("new"))
        .expect("maildir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

fn sends_verifiable_signatures(genkey: &[&str], algorithm: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let (key, public) = keypair(dir.path(), "dkim", genkey);
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 2);
    configure_dkim(&p, &key);
    let o = p.run(&["send", "du-avgor"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("5 sent"), "{err}");
    assert!(!err.contains("DKIM"), "no DKIM warning any more: {err}");

    let messages = stored(&server);
    assert_eq!(messages.len(), 5);
    let verdicts = verify(&public, &messages);
    for line in verdicts.lines() {
        assert!(
            line.starts_with("ok ")
                && line.contains(" d=example.org ")
                && line.contains(&format!(" s={SELECTOR} "))
                && line.contains(&format!(" a={algorithm}-sha256 ")),
            "{line}"
        );
        let signed = line.rsplit(" h=").next().expect("h=").to_lowercase();
        let signed: Vec<&str> = signed.split(':').collect();
        for header in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert!(signed.contains(&header), "{header} is signed: {line}");
        }
    }
    for message in &messages {
        let bytes = std::fs::read(message).expect("eml");
        let signatures = String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
            .count();
        assert_eq!(signatures, 1, "signed once");
    }

    // `preview --eml` shows the message as it is sent: signed.
    let o = p.run(&["preview", "du-avgor", "--eml"]);
    assert!(o.status.success());
    let preview = dir.path().join("preview.eml");
    std::fs::write(&preview, &o.stdout).expect("preview");
    verify(&public, &[preview]);
}

#[test]
fn rsa_pkcs8_signatures_verify_with_dkimpy() {
    sends_verifiable_signatures(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "OUT",
        ],
        "rsa",
    );
}

#[test]
fn rsa_pkcs1_signatures_verify_with_dkimpy() {
    sends_verifiable_signatures(&["genrsa", "-traditional", "-out", "OUT", "2048"], "rsa");
}

#[test]
fn ed25519_signatures_verify_with_dkimpy() {
    sends_verifiable_signatures(
        &["genpkey", "-algorithm", "ed25519", "-out", "OUT"],
        "ed25519",
    );
}

#[test]
fn a_missing_or_bad_dkim_key_is_a_config_error_naming_the_file() {
    let p = Project::sample();
    let missing = p.path().join("config/missing.pem");
    configure_dkim(&p, &missing);
    let o = p.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("config/pressroom.toml:")
            && err.contains(&format!("cannot read the DKIM key {}", missing.display())),
        "{err}"
    );

    let p = Project::sample();
    let garbage = p.write("config/dkim.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    configure_dkim(&p, &garbage);
    for command in [&["check"][..], &["send", "du-avgor"]] {
        let o = p.run(command);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{command:?}: {err}");
        assert!(
            err.contains(&format!(
                "the DKIM key {}: not a private key",
                garbage.display()
            )),
            "{err}"
        );
    }
    assert!(
        !p.path().join("state/outbox").exists(),
        "nothing was sent unsigned"
    );
}
