//! Where messages go: `.eml` files in an outbox folder (the default: a fresh checkout needs
//! no mail server) or an SMTP server through lettre's async, pooled transport (STARTTLS or
//! implicit TLS with rustls; AUTH with a password read from a file, an environment variable
//! or systemd's credentials directory, never from the config). Every outcome is classified
//! for the dispatch policy: accepted, transient, permanent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Mail, Secret, Transport as Configured};
use crate::dispatch::Attempt;

#[derive(Clone)]
pub enum Transport {
    File { outbox: PathBuf },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the SMTP password: {0}")]
    Secret(String),
    #[error("the SMTP URL {url}: {source}")]
    Url {
        url: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
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
                user,
                password,
            } => {
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
                    .map_err(|source| TransportError::Url {
                        url: url.to_string(),
                        source,
                    })?
                    .pool_config(PoolConfig::new().max_size(mail.concurrency as u32))
                    .timeout(Some(Duration::from_secs(60)));
                if let Some(user) = user {
                    let secret = match password {
                        Some(secret) => read_secret(secret, credentials_dir)?,
                        None => {
                            return Err(TransportError::Secret(format!(
                                "user `{user}` has no password_file, password_env or password_credential"
                            )));
                        }
                    };
                    builder = builder.credentials(Credentials::new(user.clone(), secret));
                }
                Ok(Transport::Smtp(builder.build()))
            }
        }
    }

    /// Hands one message over; says what became of it.
    pub async fn send(&self, message: &Message) -> Attempt {
        match self {
            Transport::File { outbox } => write_eml(outbox, message),
            Transport::Smtp(smtp) => match smtp.send(message.clone()).await {
                Ok(response) => Attempt::Accepted(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )),
                Err(e) if e.is_permanent() => Attempt::Permanent(e.to_string()),
                // 4xx replies, and anything else (a dropped connection, a timeout, TLS).
                Err(e) => Attempt::Transient(e.to_string()),
            },
        }
    }
}

/// Writes the message as `<outbox>/<Message-ID>.eml`, atomically; the same message twice
/// is the same file.
fn write_eml(outbox: &Path, message: &Message) -> Attempt {
    let id = message
        .headers()
        .get_raw("Message-ID")
        .unwrap_or("message")
        .trim_matches(['<', '>'])
        .replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '@' && c != '-',
            "_",
        );
    let target = outbox.join(format!("{id}.eml"));
    let tmp = outbox.join(format!(".{id}.eml.tmp"));
    let result = std::fs::create_dir_all(outbox)
        .and_then(|()| std::fs::write(&tmp, message.formatted()))
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
