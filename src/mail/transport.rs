//! Where messages go: `.eml` files in an outbox folder (the default: a fresh checkout needs
//! no mail server) or an SMTP server over lettre's async SMTP connections (STARTTLS or
//! implicit TLS with rustls; AUTH with a password read from a file, an environment variable
//! or systemd's credentials directory, never from the config), reused across messages, at
//! most as many as messages in flight. Every outcome is classified for the dispatch
//! policy: accepted, transient, permanent; or, when the server will not take mail from us
//! as configured (login rejected, no STARTTLS under `tls=required`, an untrusted
//! certificate), a `Refusal` that stops the run and leaves the deliveries waiting.
//! A password is only ever sent over an encrypted connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Mutex;

use lettre::Message;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{self, Data, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::compose::Transfer;
use crate::config::{Mail, Secret, Tls, Transport as Configured};
use crate::mail::policy::Attempt;

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
/// by lettre so that `TCP_NODELAY` can be set, for `smtps://` too (we do its TLS with
/// tokio-rustls and hand lettre the encrypted stream): lettre writes a message and its
/// final `.` line separately, and with Nagle's algorithm the second write waits for the
/// delayed ACK of the first (40 ms a message on Linux loopback).
pub struct Smtp {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    /// The configured user, for messages.
    user: Option<String>,
    /// Certificates trusted besides the public roots (`tls_ca`).
    extra_roots: Vec<CertificateDer<'static>>,
    /// rustls for `smtps://`, configured as lettre configures it for STARTTLS.
    implicit: TlsConnector,
    hello: ClientId,
    /// How long connecting (greeting, EHLO, TLS, login), and then each message, may take
    /// (`[mail] timeout`): a server that stalls or answers a byte at a time defers the
    /// message rather than holding the run.
    timeout: Duration,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the SMTP password: {0}")]
    Secret(String),
    #[error("the CA certificates {}: {reason}", path.display())]
    Ca { path: PathBuf, reason: String },
    #[error("the SMTP URL {url}: {reason}")]
    Url { url: String, reason: String },
}

/// The server will not take mail from us as configured. No retry fixes that: the run stops
/// and the deliveries wait for a corrected config. The message was not handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{server} rejected the login of `{user}`: {reply}")]
    Login {
        server: String,
        user: String,
        reply: String,
    },
    #[error("{server} requires a login, and the config has no `user`: {reply}")]
    LoginRequired { server: String, reply: String },
    #[error("{server} offers no login we use (PLAIN or LOGIN)")]
    NoMechanism { server: String },
    #[error("{server} does not offer STARTTLS, and tls=required forbids sending in clear")]
    NoStartTls { server: String },
    #[error(
        "{server} did not offer STARTTLS, so the connection is not encrypted: the password is not sent in clear"
    )]
    Cleartext { server: String },
    #[error(
        "{server} does not accept internationalised addresses (SMTPUTF8), and [mail] from has one"
    )]
    SenderNotAscii { server: String },
    #[error(
        "{server}'s TLS certificate is not trusted ({reason}); a relay with its own CA needs `tls_ca`"
    )]
    Certificate { server: String, reason: String },
}

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
                tls,
                user,
                password,
                tls_ca,
            } => {
                let bad = |reason: &str| TransportError::Url {
                    url: url.to_string(),
                    reason: reason.to_string(),
                };
                let host = url.host_str().ok_or_else(|| bad("no host"))?.to_string();
                let default_port = match tls {
                    Tls::Implicit => 465,
                    Tls::Required | Tls::Opportunistic | Tls::None => 587,
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
                let extra_roots = match tls_ca {
                    Some(ca) => read_ca(&ca.path)?,
                    None => Vec::new(),
                };
                let implicit = TlsConnector::from(client_config(&extra_roots).map_err(|e| {
                    TransportError::Url {
                        url: url.to_string(),
                        reason: format!("TLS settings: {e}"),
                    }
                })?);
                Ok(Transport::Smtp(Smtp {
                    implicit,
                    host,
                    port: url.port().unwrap_or(default_port),
                    tls: *tls,
                    credentials,
                    user: user.clone(),
                    extra_roots,
                    hello: ClientId::default(),
                    timeout: mail.timeout,
                    idle: Mutex::new(Vec::new()),
                }))
            }
        }
    }

    /// What messages for this transport may carry, asked once per dispatch. For SMTP that is
    /// what the server's EHLO advertised (a connection is opened if none is idle; if that
    /// fails, the portable form, and the sends will report the failure). A server that
    /// stops advertising 8BITMIME in the middle of a dispatch is not given the 8-bit
    /// messages: each is deferred (transient), and the next run asks again.
    pub async fn transfer(&self) -> Transfer {
        match self {
            // An .eml file goes wherever the press office takes it: the portable form.
            Transport::File { .. } => Transfer::SevenBit,
            Transport::Smtp(smtp) => smtp.transfer().await,
        }
    }

    /// Hands one message over; says what became of it, or that the server refuses us.
    pub async fn send(&self, message: &Outgoing) -> Result<Attempt, Refusal> {
        match self {
            Transport::File { outbox } => Ok(write_eml(outbox, message)),
            Transport::Smtp(smtp) => smtp.send(message).await,
        }
    }
}

/// Why a connection could not be made ready to send.
enum NotReady {
    /// Counts as the message's attempt (the server is down, a 4xx, a timeout).
    Attempt(Attempt),
    Refused(Refusal),
}

/// Where a transaction ended, when it did not end with the message accepted.
enum Failed {
    /// Decided before anything was sent: the connection is unchanged.
    Before(Attempt),
    Refused(Refusal),
    /// `MAIL FROM` got no positive reply: the server has nothing of this message.
    AtMail(lettre::transport::smtp::Error),
    /// At RCPT, DATA or the end of the data.
    After(lettre::transport::smtp::Error),
}

/// The recorded reason for an address with a non-ASCII local part, when the server does
/// not take such addresses.
const NO_SMTPUTF8: &str = "the server does not accept internationalised addresses (SMTPUTF8)";

fn ascii(address: &lettre::Address) -> bool {
    let text: &str = address.as_ref();
    text.is_ascii()
}

/// Whether an error says the connection was gone rather than that the server refused:
/// no reply at all (EOF, a reset), or 421, the reply of a server closing the channel.
fn closed(e: &lettre::transport::smtp::Error) -> bool {
    match code(e) {
        None => !e.is_client(),
        Some(code) => code == "421",
    }
}

impl From<Refusal> for NotReady {
    fn from(r: Refusal) -> NotReady {
        NotReady::Refused(r)
    }
}

impl Smtp {
    async fn transfer(&self) -> Transfer {
        let Ok((conn, _)) = self.take().await else {
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

    /// An idle connection (and `true`), or a new one (and `false`).
    async fn take(&self) -> Result<(AsyncSmtpConnection, bool), NotReady> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) if !conn.has_broken() => Ok((conn, true)),
            _ => match tokio::time::timeout(self.timeout, self.connect()).await {
                Ok(result) => result.map(|conn| (conn, false)),
                Err(_) => Err(NotReady::Attempt(Attempt::Transient(format!(
                    "connecting to {}:{} timed out",
                    self.host, self.port
                )))),
            },
        }
    }

    /// One message, on an idle connection or a new one. A connection taken from the idle
    /// set may have been closed by the server since its last message was accepted (an idle
    /// timeout, a limit of messages per connection, a restart): when it fails before the
    /// server answered `MAIL FROM`, nothing of this message was handed over, so it is
    /// tried again at once, on the next idle connection or a new one. Only a message whose
    /// own transaction failed on a fresh connection, or after `MAIL FROM` was accepted
    /// (when the server may have the message), is the message's attempt.
    async fn send(&self, message: &Outgoing) -> Result<Attempt, Refusal> {
        loop {
            let (mut conn, reused) = match self.take().await {
                Ok(taken) => taken,
                Err(NotReady::Attempt(attempt)) => return Ok(attempt),
                Err(NotReady::Refused(refusal)) => return Err(refusal),
            };
            let sent = tokio::time::timeout(self.timeout, self.transaction(&mut conn, message));
            match sent.await {
                Ok(Ok(response)) => {
                    self.idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(conn);
                    let text = response.message().collect::<Vec<_>>().join(" ");
                    return Ok(Attempt::Accepted(format!("{} {text}", response.code())));
                }
                Ok(Err(Failed::Before(attempt))) => {
                    // Nothing was said to the server: the connection is as good as it was.
                    self.idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(conn);
                    return Ok(attempt);
                }
                Ok(Err(Failed::Refused(refusal))) => return Err(refusal),
                Ok(Err(Failed::AtMail(e))) if reused && closed(&e) => {
                    tracing::debug!(
                        "an idle connection to {} was closed ({e}): sending on another",
                        self.server()
                    );
                    continue;
                }
                // RFC 4954's 530 at MAIL: the server wants a login the config does not give.
                Ok(Err(Failed::AtMail(e) | Failed::After(e)))
                    if code(&e).as_deref() == Some("530") =>
                {
                    return Err(Refusal::LoginRequired {
                        server: self.server(),
                        reply: e.to_string(),
                    });
                }
                // The connection is not reused after an error (see `transaction`).
                Ok(Err(Failed::AtMail(e) | Failed::After(e))) => return Ok(classify(&e)),
                Err(_) => {
                    return Ok(Attempt::Transient(format!(
                        "no reply from {}:{} within {:?}",
                        self.host, self.port, self.timeout
                    )));
                }
            }
        }
    }

    /// One SMTP transaction (MAIL, RCPT, DATA), as lettre's `send` does it, but telling
    /// where it failed. After an error the connection is closed (QUIT if the server is
    /// still talking), as lettre does, and dropped by the caller.
    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        message: &Outgoing,
    ) -> Result<Response, Failed> {
        let info = conn.server_info();
        let mut parameters = Vec::new();
        let envelope = &message.envelope;
        if !envelope.to().iter().all(ascii) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                // RFC 6531 3.4: such an address cannot be given to this server at all, now
                // or later. The domain is already punycode (`compose`): it is the local part.
                return Err(Failed::Before(Attempt::Permanent(NO_SMTPUTF8.to_string())));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if envelope.from().is_some_and(|a| !ascii(a)) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Failed::Refused(Refusal::SenderNotAscii {
                    server: self.server(),
                }));
            }
            if !parameters.contains(&MailParameter::SmtpUtfEight) {
                parameters.push(MailParameter::SmtpUtfEight);
            }
        }
        if !message.bytes.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                // The server stopped advertising 8BITMIME since the dispatch asked: the
                // next run asks again (`Transport::transfer`).
                return Err(Failed::Before(Attempt::Transient(format!(
                    "{} no longer advertises 8BITMIME",
                    self.server()
                ))));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mail = commands::Mail::new(envelope.from().cloned(), parameters);
        if let Err(e) = conn.command(mail).await {
            conn.abort().await;
            return Err(Failed::AtMail(e));
        }
        let rest = async {
            for to in envelope.to() {
                conn.command(Rcpt::new(to.clone(), Vec::new())).await?;
            }
            conn.command(Data).await?;
            conn.message(&message.bytes).await
        };
        match rest.await {
            Ok(response) => Ok(response),
            Err(e) => {
                conn.abort().await;
                Err(Failed::After(e))
            }
        }
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// lettre's TLS settings (its roots and rustls config) plus our `tls_ca`.
    fn tls_parameters(&self) -> Result<TlsParameters, NotReady> {
        let mut builder = TlsParameters::builder(self.host.clone());
        for cert in &self.extra_roots {
            let cert = Certificate::from_der(cert.to_vec())
                .map_err(|e| NotReady::Attempt(classify(&e)))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| NotReady::Attempt(classify(&e)))
    }

    /// A lettre error while making the connection ready: an untrusted certificate is a
    /// refusal, anything else is the attempt's outcome.
    fn not_ready(&self, e: lettre::transport::smtp::Error) -> NotReady {
        match untrusted_certificate(&e) {
            Some(reason) => NotReady::Refused(Refusal::Certificate {
                server: self.server(),
                reason,
            }),
            None => NotReady::Attempt(classify(&e)),
        }
    }

    /// A new connection, greeted, upgraded to TLS and authenticated as configured; a
    /// failure is what the attempt to send came to, or a refusal.
    async fn connect(&self) -> Result<AsyncSmtpConnection, NotReady> {
        let lettre = |e: lettre::transport::smtp::Error| self.not_ready(e);
        let tls = || self.tls_parameters();
        let unreachable = |e: std::io::Error| {
            NotReady::Attempt(Attempt::Transient(format!(
                "connecting to {}:{}: {e}",
                self.host, self.port
            )))
        };
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(unreachable)?;
        tcp.set_nodelay(true).map_err(unreachable)?;
        let stream: Box<dyn AsyncTokioStream> = if self.tls == Tls::Implicit {
            let name = ServerName::try_from(self.host.clone()).map_err(|e| {
                NotReady::Attempt(Attempt::Transient(format!("{}: {e}", self.host)))
            })?;
            let tls =
                self.implicit.connect(name, tcp).await.map_err(
                    |e| match untrusted_certificate(&e) {
                        Some(reason) => NotReady::Refused(Refusal::Certificate {
                            server: self.server(),
                            reason,
                        }),
                        None => NotReady::Attempt(Attempt::Transient(format!(
                            "TLS with {}: {e}",
                            self.server()
                        ))),
                    },
                )?;
            Box::new(ImplicitTls(tls))
        } else {
            Box::new(tcp)
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(lettre)?;
        let starttls = match self.tls {
            Tls::Required if !conn.can_starttls() => {
                conn.abort().await;
                return Err(Refusal::NoStartTls {
                    server: self.server(),
                }
                .into());
            }
            Tls::Required => true,
            Tls::Opportunistic => conn.can_starttls(),
            Tls::Implicit | Tls::None => false,
        };
        if starttls {
            conn.starttls(tls()?, &self.hello).await.map_err(lettre)?;
        }
        let encrypted = self.tls == Tls::Implicit || conn.is_encrypted();
        if let Some(credentials) = &self.credentials {
            if !encrypted {
                conn.abort().await;
                return Err(Refusal::Cleartext {
                    server: self.server(),
                }
                .into());
            }
            let mechanisms = [Mechanism::Plain, Mechanism::Login];
            if conn.server_info().get_auth_mechanism(&mechanisms).is_none() {
                conn.abort().await;
                return Err(Refusal::NoMechanism {
                    server: self.server(),
                }
                .into());
            }
            match conn.auth(&mechanisms, credentials).await {
                Ok(_) => {}
                // 535 (credentials invalid), 534, 538: the config is wrong, not the hour.
                Err(e) if e.is_permanent() => {
                    conn.abort().await;
                    return Err(Refusal::Login {
                        server: self.server(),
                        user: self.user.clone().unwrap_or_default(),
                        reply: e.to_string(),
                    }
                    .into());
                }
                Err(e) => return Err(lettre(e)),
            }
        }
        Ok(conn)
    }
}

/// The rustls client settings lettre 0.11 builds for its own TLS (with our features: the
/// process's rustls provider or ring, TLS 1.2 and 1.3, the webpki roots), plus `tls_ca`.
fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots.add(cert.clone())?;
    }
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Implicit TLS over our own socket, in the form lettre takes a stream. lettre did not do
/// this TLS, so it counts the stream as plain (`is_encrypted` is false); `Smtp::connect`
/// knows better and allows AUTH on it.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for ImplicitTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// The reply code of an SMTP error, if the server sent one.
fn code(e: &lettre::transport::smtp::Error) -> Option<String> {
    e.status().map(|c| c.to_string())
}

/// rustls's reason, when the error comes from a certificate it did not trust.
fn untrusted_certificate(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(e) = next {
        // tokio-rustls reports handshake failures as an io::Error wrapping rustls's error.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(e), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(reason)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return Some(format!("{reason:?}"));
            }
        }
        next = e.source();
    }
    None
}

/// The certificates of a PEM file (`tls_ca`).
pub fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let bad = |reason: String| TransportError::Ca {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate (BEGIN CERTIFICATE) in it".into()));
    }
    Ok(certs)
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
