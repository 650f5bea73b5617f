//! The daemon's HTTP server (axum): the built site from `public/`, the unsubscribe pages,
//! its one-click POST and the undo, the sign-up form's POST and the confirmation link
//! (`signup`), `/search`, `/healthz` and `/metrics`; a miss gets the
//! build's `404.html`. `serve` takes its listener and its
//! shutdown trigger as arguments, so tests bind `127.0.0.1:0` and run the real server.
//! Its limits (connections per address, requests per client, header bytes in flight) are
//! in `clients` and `budget`; what they refuse is counted in `/metrics`.

mod budget;
mod clients;
mod files;
mod gzip;
pub mod metrics;
mod preferences;
mod search;
pub mod signup;
mod unsubscribe;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::add_extension::AddExtension;
use tower_http::compression::CompressionLayer;

pub use files::resolve;
pub use metrics::Metrics;

use crate::config::Config;
use crate::optout::TokenKey;
use crate::render::Templates;

/// What the site's requests need: the config and the templates; replaced whole when the
/// config is reloaded.
#[derive(Clone)]
pub struct Site {
    /// The config, and the templates as read at start and at each reload (a change to
    /// `config/templates/` is one): what every request reads of them.
    pub config: Arc<Config>,
    pub templates: Arc<Templates>,
    /// The built-in templates with the office's words, and whether the office's templates
    /// failed to render one of those pages (a runaway loop costs a second of CPU per
    /// request): once they have, the built-in ones serve until the next reload, which a
    /// change to the templates is.
    pub built_in: Arc<Templates>,
    pub templates_failed: Arc<std::sync::atomic::AtomicBool>,
}

impl Site {
    pub fn of(config: &Config) -> Site {
        // Problems in them are the builder's to report; a broken override is left out.
        let templates = Templates::load(&config.paths.templates).0;
        Site {
            config: Arc::new(config.clone()),
            built_in: Arc::new(templates.built_in_with_words()),
            templates: Arc::new(templates),
            templates_failed: Arc::default(),
        }
    }
}

/// State shared by every request. The site is behind a std `RwLock` holding an `Arc`: a
/// request clones the `Arc` and drops the lock at once, so the lock is never held across an
/// await and a reload never waits for a slow client.
pub struct Shared {
    site: RwLock<Arc<Site>>,
    /// The daemon's ledger owner: opt-outs are its requests.
    pub ledger: crate::ledger::Handle,
    pub key: TokenKey,
    pub metrics: Arc<Metrics>,
    /// Requests in flight by client (`clients::PER_CLIENT`).
    in_flight: Arc<clients::Counts>,
    /// Pages and feeds gzipped once per version (`gzip`).
    gzipped: gzip::Cache,
    /// The search index of the site served, read once per version (`search`).
    search: search::Loaded,
    /// Sign-ups on their way to `signup::work`, and the outbox's wake-up.
    pub desk: signup::Desk,
    /// When the preferences pages last mailed each address (`preferences::Mailed`).
    mailed: preferences::Mailed,
}

impl Shared {
    pub fn new(
        config: &Config,
        ledger: crate::ledger::Handle,
        key: TokenKey,
        metrics: Arc<Metrics>,
    ) -> Shared {
        Shared {
            site: RwLock::new(Arc::new(Site::of(config))),
            ledger,
            key,
            metrics,
            in_flight: Arc::default(),
            gzipped: gzip::Cache::default(),
            search: search::Loaded::default(),
            desk: signup::Desk::default(),
            mailed: preferences::Mailed::default(),
        }
    }

    pub fn site(&self) -> Arc<Site> {
        match self.site.read() {
            Ok(site) => Arc::clone(&site),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The search index a build just committed (`Builder::search`), for `/search`.
    pub fn searchable(&self, index: Arc<crate::search::Index>) {
        self.search.offer(&self.site().config.paths.public, index);
    }

    pub fn set_site(&self, site: Site) {
        let mut guard = match self.site.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(site);
    }
}

/// What a listener serves: its routes, and the shared state that says which peers are
/// trusted proxies (their share of connections is larger).
pub struct App {
    router: Router,
    shared: Arc<Shared>,
}

/// What readers reach: the site, the unsubscribe page and `/healthz`. No `/metrics` here:
/// its counts say how many releases are embargoed (`admin_router`). Each client has at
/// most `clients::PER_CLIENT` requests in flight.
pub fn router(shared: Arc<Shared>) -> App {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/search", get(search::results))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe::confirm).post(unsubscribe::one_click),
        )
        .route("/unsubscribe/{token}/undo", post(unsubscribe::undo))
        .route("/subscribe", get(site).post(signup::post))
        .route("/subscribe/", get(site).post(signup::post))
        .route("/confirm/{token}", get(signup::ask).post(signup::confirm))
        .layer(axum::extract::DefaultBodyLimit::max(signup::MAX_BODY))
        .route(
            "/preferences/{token}",
            get(preferences::show).post(preferences::act),
        )
        .route(
            "/erase/{token}",
            get(preferences::erase_show).post(preferences::erase_act),
        )
        .route(
            "/resubscribe/{token}",
            get(preferences::again_show).post(preferences::again_act),
        )
        .fallback(site)
        .layer(CompressionLayer::new().compress_when(compressible()))
        .layer(axum::middleware::from_fn(require_host))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            clients::limit,
        ))
        .with_state(Arc::clone(&shared));
    App { router, shared }
}

/// Text the site's files do not gzip themselves (a page or feed over 1 MiB, the
/// unsubscribe pages) is compressed here, per response; pages and feeds come gzipped from
/// `gzip::Cache` already (with `Content-Encoding`, which this layer leaves alone). What is
/// compressed already (images, PDF, archives, audio, video, web fonts) is sent as it is:
/// gzipping it again costs CPU per request and saves nothing.
fn compressible() -> impl tower_http::compression::Predicate {
    use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
    DefaultPredicate::new()
        .and(NotForContentType::const_new("application/pdf"))
        .and(NotForContentType::const_new("application/zip"))
        .and(NotForContentType::const_new("application/gzip"))
        .and(NotForContentType::const_new("application/x-7z-compressed"))
        .and(NotForContentType::const_new(
            "application/vnd.openxmlformats",
        ))
        .and(NotForContentType::const_new("audio/"))
        .and(NotForContentType::const_new("video/"))
        .and(NotForContentType::const_new("font/woff"))
}

/// What the admin reaches on `[http] admin_listen`: `/metrics` and `/healthz`.
pub fn admin_router(shared: Arc<Shared>) -> App {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn(require_host))
        .with_state(Arc::clone(&shared));
    App { router, shared }
}

/// An HTTP/1.1 request must name its host (RFC 9112 §3.2): without one it is refused.
async fn require_host(request: Request, next: axum::middleware::Next) -> Response {
    if request.version() == axum::http::Version::HTTP_11
        && !request.headers().contains_key(header::HOST)
    {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "an HTTP/1.1 request needs a Host header\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// Connections served at once; more wait in the listen backlog. Slow clients cannot take
/// every file descriptor.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// A client must send its request headers within this time (slowloris), also between
/// requests on a kept-alive connection.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that stops reading (its receive window stays shut) or vanishes mid-response
/// holds its connection at most this long: the kernel drops a connection whose data stays
/// unacknowledged, zero-window probes included (`TCP_USER_TIMEOUT`).
const STALLED_PEER: Duration = Duration::from_secs(30);
/// At shutdown, requests in progress get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// The most a connection buffers of a request's headers (hyper's read buffer); longer
/// headers get 431. All connections together hold at most `budget::LIMIT` (8 MiB), not
/// 512 × 64 KiB: past it, the oldest unfinished heads are shed.
const MAX_HEADER_BUFFER: usize = 64 * 1024;

/// Serves until `shutdown` is cancelled, then lets requests in progress finish for a few
/// seconds at most (a slow client cannot hold the daemon's exit).
///
/// The accept loop is ours rather than `axum::serve`'s, which sets no timeouts and no
/// limit: each connection is HTTP/1.1 by hyper with a header read timeout and a bounded
/// header buffer, at most `MAX_CONNECTIONS` are open, and at most `clients::PER_PEER` of
/// them from one address (`clients::PER_PROXY` from a trusted proxy); the header bytes in
/// flight over all of them are bounded by `budget`.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let peers = Arc::new(clients::Counts::default());
    let shed = app
        .shared
        .metrics
        .refused
        .get_or_create(&vec![("limit", "header_budget")])
        .clone();
    let budget = budget::Budget::new(budget::LIMIT, shed);
    // Every request gives its head's bytes back to the budget once hyper has it whole.
    let router = app
        .router
        .clone()
        .layer(axum::middleware::from_fn(budget::head_read));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, a connection reset before accept: wait a
                    // moment rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Over its share, a connection is closed at once and its slot is free again.
        let share = if app
            .shared
            .site()
            .config
            .http
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip()))
        {
            clients::PER_PROXY
        } else {
            clients::PER_PEER
        };
        let Some(peer_slot) = peers.admit(peer.ip(), share) else {
            app.shared.metrics.refused("peer_connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ =
            rustix::net::sockopt::set_tcp_user_timeout(&stream, STALLED_PEER.as_millis() as u32);
        let stream = budget.meter(stream);
        // The peer's address goes with each request, for the per-client bound, and the
        // connection's count of header bytes, which the request's arrival settles.
        let service = TowerToHyperService::new(AddExtension::new(
            AddExtension::new(router.clone(), clients::Peer(peer)),
            stream.ticket(),
        ));
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _peer_slot = peer_slot;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BUFFER);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
        });
    }
    connections.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await;
    Ok(())
}

async fn site(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let site = shared.site();
    files::serve(
        &site.config.paths.public,
        request.method(),
        request.uri().path(),
        request.headers(),
        files::Links {
            base_url: &site.config.site.base_url,
            hubs: &site.config.websub_hubs,
        },
        &shared.gzipped,
    )
}

async fn healthz() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], "ok\n").into_response()
}

/// OpenMetrics to a scraper that asks for it (Prometheus does), the classic text format
/// 0.0.4 to anything else.
async fn metrics(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if openmetrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.render(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render_classic(),
        )
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::VARY, "accept"),
        ],
        body,
    )
        .into_response()
}

/// A page of ours made with the office's templates, or with the built-in ones (in the
/// office's words) once theirs have failed — an error says so, once per reload: a reader
/// who came to unsubscribe, sign up or change their choices is never left without the
/// page, and a runaway template does not cost every request its budget. Never cached.
pub(crate) fn office_page(
    site: &Site,
    status: axum::http::StatusCode,
    pages: &str,
    render: impl Fn(&crate::render::Templates) -> Result<String, crate::render::RenderError>,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::{Html, IntoResponse};
    use std::sync::atomic::Ordering;
    let office = (!site.templates_failed.load(Ordering::Relaxed)).then_some(&*site.templates);
    let html = match office.map(&render) {
        Some(Ok(html)) => Ok(html),
        failed => {
            if let Some(Err(e)) = failed {
                tracing::error!(
                    "{e}: the {pages} pages use the built-in templates until the templates change"
                );
                site.templates_failed.store(true, Ordering::Relaxed);
            }
            render(&site.built_in)
        }
    };
    match html {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!("{e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CACHE_CONTROL, "no-store")],
                "the page could not be made; try again later\n",
            )
                .into_response()
        }
    }
}
