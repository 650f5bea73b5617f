//! Where messages go: `.eml` files in an outbox folder (the default: a fresh checkout needs
//! no mail server) or an SMTP server over lettre's async SMTP connections (STARTTLS or
//! implicit TLS with rustls; AUTH with a password read from a file, an environment variable
//! or systemd's credentials directory, never from the config), reused across messages, at
//! most as many as messages in flight. Every outcome is classified for the dispatch
//! policy: accepted, transient, permanent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Mutex;

use lettre::Message;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};

use super::compose::Transfer;
use crate::config::{Mail, Secret, Transport as Configured};
use crate::dispatch::Attempt;

pub enum Transport {
    File { outbox: PathBuf },
    Smtp(Smtp),
}

/// A message as it goes out: its envelope and its bytes, formatted by whoever composed it
/// (off the thread that does the IO), and its Message-ID.
pub struct Outgoing {
    envelope: Envelope,
    bytes: Vec<u8>,
    message_id: String,
}

impl Outgoing {
    pub fn new(message: &Message) -> Outgoing {
        Outgoing {
            envelope: message.envelope().clone(),
            bytes: message.formatted(),
            message_id: message
                .headers()
                .get_raw("Message-ID")
                .unwrap_or("message")
                .to_string(),
        }
    }
}

/// An SMTP server and the connections open to it. Connections are opened here rather than
/// by lettre's pool so that `TCP_NODELAY` can be set: lettre writes a message and its final
/// `.` line separately, and with Nagle's algorithm the second write waits for the delayed
/// ACK of the first (40 ms a message on Linux loopback).
pub struct Smtp {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=required`: STARTTLS or fail.
    Required,
    /// `smtp://…?tls=opportunistic`: STARTTLS when offered.
    Opportunistic,
    /// `smtp://`: plain (a relay on localhost).
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the SMTP password: {0}")]
    Secret(String),
    #[error("the SMTP URL {url}: {reason}")]
    Url { url: String, reason: String },
}

/// How long connecting, and then one whole message, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const SEND_TIMEOUT: Duration = Duration::from_secs(120);

impl Transport {
    pub fn from_config(
        mail: &Mail,
        credentials_dir: Option<&Path>,
    ) -> Result<Transport, TransportError> {
        match &mail.transport {
            Configured::File { outbox } => Ok(Transport::File {
                outbox: outbox.clone(),
            }),
            Configured::Smtp {
                url,
                user,
                password,
            } => {
                let bad = |reason: &str| TransportError::Url {
                    url: url.to_string(),
                    reason: reason.to_string(),
                };
                let host = url.host_str().ok_or_else(|| bad("no host"))?.to_string();
                let query = url
                    .query_pairs()
                    .find(|(k, _)| k == "tls")
                    .map(|(_, v)| v.to_string());
                let (tls, default_port) = match (url.scheme(), query.as_deref()) {
                    ("smtps", _) => (Tls::Implicit, 465),
                    ("smtp", Some("required")) => (Tls::Required, 587),
                    ("smtp", Some("opportunistic")) => (Tls::Opportunistic, 587),
                    ("smtp", None) => (Tls::None, 587),
                    _ => {
                        return Err(bad(
                            "expected smtps://, or smtp:// with tls=required or tls=opportunistic",
                        ));
                    }
                };
                let credentials = match user {
                    Some(user) => {
                        let secret = match password {
                            Some(secret) => read_secret(secret, credentials_dir)?,
                            None => {
                                return Err(TransportError::Secret(format!(
                                    "user `{user}` has no password_file, password_env or password_credential"
                                )));
                            }
                        };
                        Some(Credentials::new(user.clone(), secret))
                    }
                    None => None,
                };
                Ok(Transport::Smtp(Smtp {
                    host,
                    port: url.port().unwrap_or(default_port),
                    tls,
                    credentials,
                    hello: ClientId::default(),
                    idle: Mutex::new(Vec::new()),
                }))
            }
        }
    }

    /// What messages for this transport may carry, asked once per dispatch. For SMTP that is
    /// what the server's EHLO advertised (a connection is opened if none is idle; if that
    /// fails, the portable form, and the sends will report the failure). A server that
    /// stops advertising 8BITMIME in the middle of a dispatch gets a refusal from lettre
    /// for the 8-bit messages, which is transient: the next run asks again.
    pub async fn transfer(&self) -> Transfer {
        match self {
            // An .eml file goes wherever the press office takes it: the portable form.
            Transport::File { .. } => Transfer::SevenBit,
            Transport::Smtp(smtp) => smtp.transfer().await,
        }
    }

    /// Hands one message over; says what became of it.
    pub async fn send(&self, message: &Outgoing) -> Attempt {
        match self {
            Transport::File { outbox } => write_eml(outbox, message),
            Transport::Smtp(smtp) => smtp.send(message).await,
        }
    }
}

impl Smtp {
    async fn transfer(&self) -> Transfer {
        let Ok(conn) = self.take().await else {
            return Transfer::SevenBit;
        };
        let transfer = if conn.server_info().supports_feature(Extension::EightBitMime) {
            Transfer::EightBitMime
        } else {
            Transfer::SevenBit
        };
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        transfer
    }

    /// An idle connection, or a new one.
    async fn take(&self) -> Result<AsyncSmtpConnection, Attempt> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) if !conn.has_broken() => Ok(conn),
            _ => match tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await {
                Ok(result) => result,
                Err(_) => Err(Attempt::Transient(format!(
                    "connecting to {}:{} timed out",
                    self.host, self.port
                ))),
            },
        }
    }

    async fn send(&self, message: &Outgoing) -> Attempt {
        let mut conn = match self.take().await {
            Ok(conn) => conn,
            Err(attempt) => return attempt,
        };
        let sent =
            tokio::time::timeout(SEND_TIMEOUT, conn.send(&message.envelope, &message.bytes)).await;
        match sent {
            Ok(Ok(response)) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn);
                let text = response.message().collect::<Vec<_>>().join(" ");
                Attempt::Accepted(format!("{} {text}", response.code()))
            }
            // lettre drops a connection after an error reply; it is not reused.
            Ok(Err(e)) => classify(&e),
            Err(_) => Attempt::Transient(format!(
                "no reply from {}:{} within {SEND_TIMEOUT:?}",
                self.host, self.port
            )),
        }
    }

    /// A new connection, greeted, upgraded to TLS and authenticated as configured; a
    /// failure is what the attempt to send came to.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Attempt> {
        let lettre = |e: lettre::transport::smtp::Error| classify(&e);
        let tls = || TlsParameters::new(self.host.clone()).map_err(lettre);
        let mut conn = if self.tls == Tls::Implicit {
            // lettre opens this socket itself; Nagle's delay stays (see the module note).
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(CONNECT_TIMEOUT),
                &self.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(lettre)?
        } else {
            let unreachable = |e: std::io::Error| {
                Attempt::Transient(format!("connecting to {}:{}: {e}", self.host, self.port))
            };
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(unreachable)?;
            tcp.set_nodelay(true).map_err(unreachable)?;
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(lettre)?
        };
        let starttls = match self.tls {
            Tls::Required => true,
            Tls::Opportunistic => conn.can_starttls(),
            Tls::Implicit | Tls::None => false,
        };
        if starttls {
            conn.starttls(tls()?, &self.hello).await.map_err(lettre)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(lettre)?;
        }
        Ok(conn)
    }
}

/// 5xx: permanent. 4xx, and anything else (a dropped connection, TLS, a timeout): transient.
fn classify(e: &lettre::transport::smtp::Error) -> Attempt {
    if e.is_permanent() {
        Attempt::Permanent(e.to_string())
    } else {
        Attempt::Transient(e.to_string())
    }
}

/// Writes the message as `<outbox>/<Message-ID>.eml`, atomically; the same message twice
/// is the same file.
fn write_eml(outbox: &Path, message: &Outgoing) -> Attempt {
    let id = message.message_id.trim_matches(['<', '>']).replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '@' && c != '-',
        "_",
    );
    let target = outbox.join(format!("{id}.eml"));
    let tmp = outbox.join(format!(".{id}.eml.tmp"));
    let result = std::fs::create_dir_all(outbox)
        .and_then(|()| std::fs::write(&tmp, &message.bytes))
        .and_then(|()| std::fs::rename(&tmp, &target));
    match result {
        Ok(()) => Attempt::Accepted(format!("written to {}", target.display())),
        Err(e) => Attempt::Transient(format!("cannot write {}: {e}", target.display())),
    }
}

fn read_secret(secret: &Secret, credentials_dir: Option<&Path>) -> Result<String, TransportError> {
    let value = match secret {
        Secret::File(path) => std::fs::read_to_string(path)
            .map_err(|e| TransportError::Secret(format!("{}: {e}", path.display())))?,
        Secret::Env(var) => {
            std::env::var(var).map_err(|_| TransportError::Secret(format!("${var} is not set")))?
        }
        Secret::Credential(name) => {
            let dir = credentials_dir.ok_or_else(|| {
                TransportError::Secret(format!(
                    "credential `{name}`: $CREDENTIALS_DIRECTORY is not set"
                ))
            })?;
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map_err(|e| TransportError::Secret(format!("{}: {e}", path.display())))?
        }
    };
    Ok(value.trim_end_matches(['\r', '\n']).to_string())
}
