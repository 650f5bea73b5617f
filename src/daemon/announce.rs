//! Telling others (reqwest): a WebSub publish ping to each hub for each changed feed, and
//! JSON webhooks on publication and on dispatch completion. Each message is its own tracked
//! task, retried with backoff (10 s doubling, five tries) and cancelled at shutdown; none is
//! ever awaited by the event loop, so a failing hub or webhook never delays publication or
//! mail. They are sent only after the build that changed the feeds has been committed.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use crate::clock;
use crate::http::Metrics;

const TRIES: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Announcer {
    client: reqwest::Client,
    tracker: TaskTracker,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
}

/// One message to one receiver.
enum Message {
    /// `hub.mode=publish&hub.url=<feed>` as a form POST.
    WebSub {
        feed: Url,
    },
    Webhook {
        body: serde_json::Value,
    },
}

impl Announcer {
    pub fn new(
        tracker: TaskTracker,
        stop: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Announcer> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(TIMEOUT)
            .user_agent(concat!("pressroom/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Announcer {
            client,
            tracker,
            stop,
            metrics,
        })
    }

    /// Pings every hub for every changed feed.
    pub fn feeds_changed(&self, hubs: &[Url], feeds: impl IntoIterator<Item = Url>) {
        let feeds: Vec<Url> = feeds.into_iter().collect();
        for hub in hubs {
            for feed in &feeds {
                self.spawn(hub.clone(), Message::WebSub { feed: feed.clone() });
            }
        }
    }

    /// Posts `body` to every webhook.
    pub fn webhook(&self, hooks: &[Url], body: serde_json::Value) {
        for hook in hooks {
            self.spawn(hook.clone(), Message::Webhook { body: body.clone() });
        }
    }

    fn spawn(&self, to: Url, message: Message) {
        let this = self.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = this.stop.cancelled() => {}
                () = this.deliver(&to, &message) => {}
            }
        });
    }

    async fn deliver(&self, to: &Url, message: &Message) {
        let mut wait = FIRST_RETRY;
        for attempt in 1..=TRIES {
            let request = match message {
                Message::WebSub { feed } => self
                    .client
                    .post(to.clone())
                    .form(&[("hub.mode", "publish"), ("hub.url", feed.as_str())]),
                Message::Webhook { body } => self.client.post(to.clone()).json(body),
            };
            let why = match request.send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::debug!(%to, "notified");
                    return;
                }
                Ok(r) => format!("answered {}", r.status()),
                Err(e) => e.to_string(),
            };
            tracing::warn!(%to, attempt, "notification failed: {why}");
            self.metrics.error("notify", clock::now());
            if attempt < TRIES {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
}
