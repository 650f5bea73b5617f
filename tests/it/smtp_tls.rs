//! TLS and AUTH against the real SMTP server (aiosmtpd, tests/smtp/server.py) in STARTTLS-
//! required and implicit-TLS modes, login required. Its certificate is issued at test time
//! by a throwaway CA (openssl) that the client trusts through `tls_ca`, as a relay with its
//! own CA would be.

use std::process::{Command, Output};

use super::smtp::{SmtpServer, project_with_smtp};
use super::*;

const USER: &str = "press";
const PASSWORD: &str = "correct horse battery staple";

/// A CA and a server certificate for 127.0.0.1 and localhost that it signed.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let path = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_string();
    let (ca, ca_key, key, csr, cert, ext) = (
        path("ca.pem"),
        path("ca.key"),
        path("server.key"),
        path("server.csr"),
        path("server.pem"),
        path("server.ext"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut args = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=pressroom test CA",
    ];
    args.extend(ec);
    args.extend(["-keyout", &ca_key, "-out", &ca]);
    openssl(&args);
    let mut args = vec!["req", "-subj", "/CN=localhost"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr]);
    openssl(&args);
    // webpki refuses a CA certificate as the server's own: issue a leaf.
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    Pki {
        ca: ca.into(),
        cert: cert.into(),
        key: key.into(),
    }
}

fn start(dir: &Path, pki: &Pki, mode: &str, extra: &[&str]) -> SmtpServer {
    let auth = format!("{USER}:{PASSWORD}");
    let mut options = vec![
        "--tls",
        mode,
        "--tls-cert",
        pki.cert.to_str().expect("utf-8"),
        "--tls-key",
        pki.key.to_str().expect("utf-8"),
        "--auth",
        &auth,
    ];
    options.extend(extra);
    SmtpServer::start_with(dir, 0, &options)
}

/// Points the project's `[mail]` at `url` with `lines` added (user, password source, CA),
/// replacing what an earlier call set.
fn configure(p: &Project, url: &str, lines: &str) {
    let config = p.path().join("config/pressroom.toml");
    let original = p.path().join("pressroom.toml.orig");
    if !original.exists() {
        std::fs::copy(&config, &original).expect("keep the original");
    }
    let text = std::fs::read_to_string(&original).expect("config");
    let start = text.find("\nurl = \"smtp").expect("an smtp url") + 1;
    let end = start + text[start..].find('\n').expect("end of line");
    let text = format!("{}url = \"{url}\"\n{lines}{}", &text[..start], &text[end..]);
    std::fs::write(&config, text).expect("config");
}

fn send(p: &Project, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pressroom"))
        .arg("--config")
        .arg(p.path().join("config/pressroom.toml"))
        .args(["send", "du-avgor"])
        .envs(env.iter().copied())
        .output()
        .expect("run pressroom")
}

/// Each stored message's sidecar: whether it came over TLS, and as which user.
fn sessions(server: &SmtpServer) -> Vec<(bool, Option<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(server.maildir.join("new")).expect("maildir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("json")).expect("json");
            out.push((
                meta["tls"].as_bool().expect("tls"),
                meta["auth_user"].as_str().map(str::to_string),
            ));
        }
    }
    out
}

/// (state, attempts) of every delivery, from `report --csv`.
fn ledger_states(p: &Project) -> Vec<(String, String)> {
    let o = p.run(&["report", "du-avgor", "--csv"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].to_string(), f[3].to_string())
        })
        .collect()
}

/// Where the password comes from, and which AUTH mechanism the server leaves us.
struct Case<'a> {
    source: &'a str,
    secret: String,
    env: Vec<(&'a str, &'a str)>,
    server_options: &'a [&'a str],
    mechanism: &'a str,
}

#[test]
fn starttls_and_login_deliver_with_the_password_from_a_file_the_environment_or_credentials() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).expect("secrets");
    std::fs::write(secrets.join("smtp-password"), format!("{PASSWORD}\n")).expect("secret");
    let file = secrets.join("smtp-password");
    let ca = format!("tls_ca = \"{}\"\n", pki.ca.display());
    let secrets_dir = secrets.to_str().expect("utf-8");
    let cases = [
        Case {
            source: "file",
            secret: format!("password_file = \"{}\"\n", file.display()),
            env: vec![],
            server_options: &[],
            mechanism: "PLAIN",
        },
        Case {
            source: "env",
            secret: "password_env = \"PRESSROOM_TEST_SMTP_PASSWORD\"\n".into(),
            env: vec![("PRESSROOM_TEST_SMTP_PASSWORD", PASSWORD)],
            // The server offers LOGIN alone, so that mechanism is tested too.
            server_options: &["--auth-exclude", "PLAIN"],
            mechanism: "LOGIN",
        },
        Case {
            source: "credential",
            secret: "password_credential = \"smtp-password\"\n".into(),
            env: vec![("CREDENTIALS_DIRECTORY", secrets_dir)],
            server_options: &[],
            mechanism: "PLAIN",
        },
    ];
    for Case {
        source,
        secret,
        env,
        server_options,
        mechanism,
    } in cases
    {
        let server_dir = dir.path().join(source);
        std::fs::create_dir_all(&server_dir).expect("dir");
        let server = start(&server_dir, &pki, "starttls", server_options);
        let p = project_with_smtp(server.port, 2);
        configure(
            &p,
            &format!("smtp://127.0.0.1:{}?tls=required", server.port),
            &format!("user = \"{USER}\"\n{secret}{ca}"),
        );
        let o = send(&p, &env);
        assert!(
            o.status.success() && stderr(&o).contains("5 sent"),
            "{source}: {}",
            stderr(&o)
        );
        let seen = sessions(&server);
        assert_eq!(seen.len(), 5, "{source}");
        assert!(
            seen.iter()
                .all(|(tls, user)| *tls && user.as_deref() == Some(USER)),
            "{source}: every message over TLS, logged in: {seen:?}"
        );
        let log = std::fs::read_to_string(server_dir.join("smtp.log")).expect("log");
        assert!(
            log.contains(&format!("mechanism={mechanism}")) && log.contains("verdict=235"),
            "{source}: AUTH {mechanism}: {log}"
        );
    }
}

#[test]
fn a_wrong_password_stops_the_run_and_fails_nobody() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let server = start(dir.path(), &pki, "starttls", &[]);
    let p = project_with_smtp(server.port, 20);
    configure(
        &p,
        &format!("smtp://127.0.0.1:{}?tls=required", server.port),
        &format!(
            "user = \"{USER}\"\npassword_env = \"SMTP_PASSWORD\"\ntls_ca = \"{}\"\n",
            pki.ca.display()
        ),
    );
    let o = send(&p, &[("SMTP_PASSWORD", "wrong")]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("rejected the login of `{USER}`"))
            && err.contains("535")
            && err.contains("sending stopped"),
        "{err}"
    );
    assert!(server.messages().is_empty());
    let states = ledger_states(&p);
    assert_eq!(states.len(), 23);
    assert!(
        every(&states, "deliveries", |(s, attempts)| s == "queued"
            && attempts == "0"),
        "every delivery waits, no attempt counted: {states:?}"
    );

    let o = send(&p, &[("SMTP_PASSWORD", PASSWORD)]);
    assert!(
        o.status.success() && stderr(&o).contains("23 sent"),
        "{}",
        stderr(&o)
    );
    assert_eq!(server.per_recipient().len(), 23);
}

#[test]
fn tls_required_never_sends_in_clear_to_a_server_without_starttls() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 1);
    configure(
        &p,
        &format!("smtp://127.0.0.1:{}?tls=required", server.port),
        "",
    );
    let o = send(&p, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("does not offer STARTTLS"), "{err}");
    assert!(server.messages().is_empty(), "nothing sent in clear");
    assert!(every(ledger_states(&p), "deliveries", |(s, _)| s == "queued"));

    // And a password is refused outright with plain smtp://.
    configure(
        &p,
        &format!("smtp://127.0.0.1:{}", server.port),
        &format!("user = \"{USER}\"\npassword_env = \"SMTP_PASSWORD\"\n"),
    );
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a password would cross the network in clear"),
        "{err}"
    );
}

#[test]
fn implicit_tls_delivers_and_an_untrusted_certificate_stops_the_run() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let server = start(dir.path(), &pki, "implicit", &[]);
    let p = project_with_smtp(server.port, 2);
    let login = format!("user = \"{USER}\"\npassword_env = \"SMTP_PASSWORD\"\n");
    let url = format!("smtps://127.0.0.1:{}", server.port);

    // Without tls_ca the test CA is unknown: nothing is sent, nobody is failed.
    configure(&p, &url, &login);
    let o = send(&p, &[("SMTP_PASSWORD", PASSWORD)]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("certificate is not trusted") && err.contains("tls_ca"),
        "{err}"
    );
    assert!(every(ledger_states(&p), "deliveries", |(s, _)| s == "queued"));

    configure(
        &p,
        &url,
        &format!("{login}tls_ca = \"{}\"\n", pki.ca.display()),
    );
    let o = send(&p, &[("SMTP_PASSWORD", PASSWORD)]);
    assert!(
        o.status.success() && stderr(&o).contains("5 sent"),
        "{}",
        stderr(&o)
    );
    let seen = sessions(&server);
    assert_eq!(seen.len(), 5);
    assert!(
        seen.iter()
            .all(|(tls, user)| *tls && user.as_deref() == Some(USER))
    );
}

#[test]
fn a_tls_ca_file_without_certificates_is_a_config_error_naming_it() {
    let p = Project::sample();
    let ca = p.write("config/ca.pem", "not a certificate\n");
    let config = p.path().join("config/pressroom.toml");
    let text = std::fs::read_to_string(&config).expect("config").replace(
        "transport = \"file\"",
        &format!(
            "transport = \"smtp\"\nurl = \"smtps://127.0.0.1:465\"\ntls_ca = \"{}\"",
            ca.display()
        ),
    );
    std::fs::write(&config, text).expect("config");
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("config/pressroom.toml:")
            && err.contains(&format!("the CA certificates {}", ca.display())),
        "{err}"
    );
}

#[test]
fn an_unknown_tls_mode_in_the_smtp_url_fails_check_at_its_line() {
    let p = Project::sample();
    p.set_config(
        "transport = \"file\"",
        "transport = \"smtp\"\nurl = \"smtp://127.0.0.1:587?tls=bogus\"",
    );
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("config/pressroom.toml:")
            && err.contains("`smtp://127.0.0.1:587?tls=bogus`: unknown TLS mode tls=bogus")
            && err.contains("tls=required"),
        "{err}"
    );
}
