//! Who a request comes from, and how much of the server one client may hold. The client is
//! the peer, unless the peer is one of `[http] trusted_proxies`: then it is the right-most
//! address of `X-Forwarded-For` that is not itself a trusted proxy (nginx's
//! `real_ip_recursive`). A peer holds at most `PER_PEER` connections (a trusted proxy
//! `PER_PROXY`), and a client at most `PER_CLIENT` requests in flight, a response counted
//! until its body is sent or dropped. A one-click unsubscribe whose token verifies is
//! never refused by the per-client bound: an opt-out must always get through.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::Shared;

/// Connections one address may hold at once: one client trickling headers over hundreds of
/// connections (slowloris) takes this many of `MAX_CONNECTIONS`, never all of them. A
/// browser opens six; a newsroom behind one NAT address many more, but each is short.
pub const PER_PEER: usize = 64;
/// Connections a trusted proxy may hold: all but a direct peer's share, which stays free
/// for direct clients (a health check, the admin's curl). A proxy carries every client
/// behind it, so the per-peer share would let one flooding client starve the others;
/// behind a proxy the per-client bound below tells them apart instead.
pub const PER_PROXY: usize = super::MAX_CONNECTIONS - PER_PEER;
/// Requests one client may have in flight, responses until their bodies are sent. A
/// browser has six at most; 16 journalists behind one NAT each downloading the same PDF
/// need 16. One flooding client behind a proxy takes 32 of the proxy's 448 connections,
/// the clients behind it the rest.
pub const PER_CLIENT: usize = 32;
/// How long a refused client is asked to wait: its own requests in flight end meanwhile.
const RETRY_AFTER_SECS: &str = "1";

/// The client of a request that arrived from `peer`. Only a trusted proxy's
/// `X-Forwarded-For` is read: anyone else could write any address there. Walking the list
/// from the right (the hop nearest to us), each trusted proxy passes us to the address it
/// was given; the first address that is not a trusted proxy is the client. An entry that
/// is not an address ends the walk at the proxy that passed it on; a list of trusted
/// proxies only names its left-most one.
pub fn client_of<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Several `X-Forwarded-For` lines are one list, in order (RFC 9110 §5.3).
    for value in forwarded_for.rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            let Some(ip) = parse_forwarded(entry) else {
                return client;
            };
            client = ip;
            if !is_trusted(&ip) {
                return client;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, as proxies write it (`192.0.2.7`, `2001:db8::1`,
/// sometimes `[2001:db8::1]` or with a port).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    entry
        .parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip())
        .or_else(|| {
            entry
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<IpAddr>()
                .ok()
        })
}

/// The address a connection comes from, put into each of its requests by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// How many of something (connections, requests in flight) each address holds. A std
/// mutex: each use is a map update, never held across an await (mini-redis's `db.rs`
/// argues the same).
#[derive(Default)]
pub struct Counts(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection or request of an address; dropping it gives its place back.
pub struct Slot {
    counts: Arc<Counts>,
    ip: IpAddr,
}

impl Counts {
    /// A place for one more from `ip`, unless it holds `limit` already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<Slot> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// The per-client bound on requests in flight, as a middleware of the readers' router.
/// The accept loop puts the peer's address into each request (`Peer`).
pub async fn limit(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(Peer(peer)) = request.extensions().get::<Peer>().copied() else {
        return next.run(request).await;
    };
    if is_valid_one_click(&shared, request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let site = shared.site();
    let client = client_of(
        peer.ip(),
        request.headers().get_all("x-forwarded-for").iter(),
        &site.config.http.trusted_proxies,
    );
    let Some(slot) = shared.in_flight.admit(client, PER_CLIENT) else {
        shared.metrics.refused("client_requests");
        return too_many();
    };
    next.run(request)
        .await
        .map(|body| Body::new(Held { body, _slot: slot }))
}

/// A POST to an unsubscribe URL whose token the key accepts: what `unsubscribe::one_click`
/// records. Verifying is one HMAC, cheaper than anything a refusal would save.
fn is_valid_one_click(shared: &Shared, method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let Some(token) = path.strip_prefix("/unsubscribe/") else {
        return false;
    };
    percent_encoding::percent_decode_str(token)
        .decode_utf8()
        .ok()
        .is_some_and(|t| !t.contains('/') && shared.key.verify(&t).is_some())
}

/// 429, not 503: the refusal is about this client, not the server. A proxy or load
/// balancer takes a 503 for a sick backend (nginx's `proxy_next_upstream http_503` sends
/// the flood to the next server, health checks count it), so one client's flood would
/// mark the server down for everyone; RFC 6585 §4 made 429 for exactly this.
fn too_many() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (
        StatusCode::TOO_MANY_REQUESTS,
        headers,
        "too many requests at once from your address; try again in a moment\n",
    )
        .into_response()
}

/// A response body that holds its client's place until it is sent or dropped: a slow
/// download counts for as long as it takes.
struct Held {
    body: Body,
    _slot: Slot,
}

impl http_body::Body for Held {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().expect("net")).collect();
        let values: Vec<HeaderValue> = xff
            .iter()
            .map(|v| HeaderValue::from_str(v).expect("value"))
            .collect();
        client_of(peer.parse().expect("ip"), values.iter(), &trusted).to_string()
    }

    #[test]
    fn the_client_is_the_right_most_address_no_trusted_proxy_holds() {
        let proxies = ["127.0.0.2/32", "10.0.0.0/8"];
        // An untrusted peer is the client, whatever it writes.
        assert_eq!(
            client("192.0.2.9", &["198.51.100.1"], &proxies),
            "192.0.2.9"
        );
        assert_eq!(
            client("127.0.0.2", &["198.51.100.1"], &proxies),
            "198.51.100.1"
        );
        // A client's own forged entries stand left of what our proxies appended.
        assert_eq!(
            client(
                "127.0.0.2",
                &["203.0.113.66, 198.51.100.1, 10.1.2.3"],
                &proxies
            ),
            "198.51.100.1"
        );
        // Two header lines are one list.
        assert_eq!(
            client(
                "127.0.0.2",
                &["203.0.113.66", "198.51.100.1 ,10.1.2.3"],
                &proxies
            ),
            "198.51.100.1"
        );
        assert_eq!(
            client("127.0.0.2", &["[2001:db8::7]:4711"], &proxies),
            "2001:db8::7"
        );
        // Nothing forwarded: the proxy itself. Only proxies: the left-most.
        assert_eq!(client("127.0.0.2", &[], &proxies), "127.0.0.2");
        assert_eq!(
            client("127.0.0.2", &["10.0.0.1, 10.0.0.2"], &proxies),
            "10.0.0.1"
        );
        // Garbage stops at the hop that passed it on.
        assert_eq!(
            client("127.0.0.2", &["198.51.100.1, unknown, 10.0.0.5"], &proxies),
            "10.0.0.5"
        );
        // With nothing trusted, nothing is read.
        assert_eq!(client("127.0.0.2", &["198.51.100.1"], &[]), "127.0.0.2");
    }

    #[test]
    fn a_place_is_given_back_when_its_slot_is_dropped() {
        let counts = Arc::new(Counts::default());
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let held: Vec<Slot> = (0..3).filter_map(|_| counts.admit(ip, 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(counts.admit(ip, 3).is_none());
        assert!(counts.admit("192.0.2.2".parse().expect("ip"), 3).is_some());
        drop(held);
        assert!(counts.admit(ip, 3).is_some());
        assert!(counts.0.lock().expect("lock").len() <= 1);
    }
}
