//! Signing up from the newsroom (SPEC §6, double opt-in). `POST /subscribe` answers at
//! once with one page, byte for byte the same whatever becomes of the sign-up (a new
//! address, a subscriber, someone on the media list, an opt-out, a limit reached, the
//! honeypot filled, storage full): the form is handed to `work`, a task of the daemon's,
//! through a bounded queue, and the response awaits none of it, so neither the page nor
//! its timing tells whether an address is known. Only a form that cannot be read (no or a
//! bad address, a topic or language the site does not offer) gets another page (400),
//! which names no address; a POST from another site is refused (403) by its `Origin`, else
//! its `Referer`, against `[site] base_url` (both absent: allowed, as some privacy tools
//! strip both).
//!
//! Behind the answer (`work`): the honeypot drops the sign-up; so does a client past
//! `PER_CLIENT` sign-ups in `CLIENT_PERIOD` (in memory: a restart forgets it, which costs
//! nothing, as the per-address limit is in the ledger); then the ledger, in one
//! transaction, refuses an address mailed a confirmation less than `ADDRESS_PERIOD` ago
//! or a sign-up past `WAITING_BOUND` waiting ones, or holds the sign-up under the SHA-256
//! of a fresh random token and posts its confirmation mail to the outbox.
//!
//! The link `GET /confirm/<token>` asks (a mail scanner fetching it changes nothing);
//! `POST` to it (same-origin) confirms: `ledger::confirm_signup`, once.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::clients::{Peer, client_of};
use crate::clock;
use crate::config::Config;
use crate::ledger::{Confirmed, Letter, Queued, SignupRow};
use crate::mail::outbox::{self, Wake};
use crate::release::{LangTag, Topic};
use crate::render::signup::{self, Page};
use crate::subscriber::{Delivery, Wants};

/// At most one confirmation mail per address in this period (in the ledger: it holds
/// across restarts). A journalist who lost the mail asks again within the hour; a stranger
/// typing someone's address gets them one mail an hour at most.
pub const ADDRESS_PERIOD: TimeDelta = TimeDelta::hours(1);
/// Sign-ups one client (`clients::client_of`) may make in `CLIENT_PERIOD`; the rest are
/// dropped behind the same answer. A newsroom behind one NAT address signs up a few
/// colleagues; a script signs up thousands.
pub const PER_CLIENT: usize = 5;
pub const CLIENT_PERIOD: TimeDelta = TimeDelta::minutes(10);
/// Sign-ups waiting for their confirmation, at most: beyond, new ones are dropped (and
/// that is logged once until there is room again). 10,000 rows are about 3 MB.
pub const WAITING_BOUND: u64 = 10_000;
/// Forms waiting for `work`; a flood beyond this is dropped before it costs a ledger write.
const QUEUE: usize = 1024;
/// Clients remembered by the per-client limit; past this, those idle longest are forgotten.
const CLIENTS_REMEMBERED: usize = 100_000;
/// The most topics and languages a form may tick, and the longest name and outlet.
const MAX_CHOICES: usize = 100;
const MAX_TEXT: usize = 200;
/// The longest address SMTP carries (RFC 5321's path limit less its brackets).
const MAX_ADDRESS: usize = 254;
/// The largest form body read.
pub const MAX_BODY: usize = 16 * 1024;

/// A sign-up as the form gave it, read and checked.
#[derive(Debug, Clone)]
pub struct Form {
    pub email: String,
    pub name: String,
    pub outlet: String,
    pub wants: Wants,
    /// The honeypot had something in it.
    pub trap: bool,
}

/// A sign-up on its way to `work`.
#[derive(Debug)]
pub struct Signup {
    form: Form,
    client: IpAddr,
}

/// The queue from the form to `work`, and the outbox's wake-up.
pub struct Desk {
    tx: mpsc::Sender<Signup>,
    rx: Mutex<Option<mpsc::Receiver<Signup>>>,
    pub wake: Wake,
}

impl Default for Desk {
    fn default() -> Desk {
        let (tx, rx) = mpsc::channel(QUEUE);
        Desk {
            tx,
            rx: Mutex::new(Some(rx)),
            wake: Wake::default(),
        }
    }
}

/// Reads a form body. `offered` says whether the site offers a topic (by its page) or a
/// language. Errors name no value.
pub fn read_form(
    body: &[u8],
    offered_topic: &dyn Fn(&Topic) -> bool,
    offered_lang: &dyn Fn(&LangTag) -> bool,
) -> Result<Form, &'static str> {
    let mut email = None;
    let mut name = String::new();
    let mut outlet = String::new();
    let mut topics: Vec<Topic> = Vec::new();
    let mut langs: Vec<LangTag> = Vec::new();
    let mut delivery = Delivery::Each;
    let mut trap = false;
    for (key, value) in url::form_urlencoded::parse(body) {
        match &*key {
            "email" => email = Some(value.trim().to_string()),
            "name" => name = clean(&value),
            "outlet" => outlet = clean(&value),
            "topic" => {
                let topic = Topic::parse(value.trim()).map_err(|_| "a topic")?;
                if !offered_topic(&topic) {
                    return Err("a topic the site offers");
                }
                if !topics.contains(&topic) {
                    topics.push(topic);
                }
            }
            "lang" => {
                let lang = LangTag::parse(value.trim()).map_err(|_| "a language")?;
                if !offered_lang(&lang) {
                    return Err("a language the site offers");
                }
                if !langs.contains(&lang) {
                    langs.push(lang);
                }
            }
            "delivery" => delivery = Delivery::parse(value.trim()).ok_or("a delivery")?,
            "website" => trap = !value.trim().is_empty(),
            _ => {}
        }
        if topics.len() > MAX_CHOICES || langs.len() > MAX_CHOICES {
            return Err("fewer choices");
        }
    }
    let email = email.filter(|e| !e.is_empty()).ok_or("an address")?;
    if email.len() > MAX_ADDRESS || email.parse::<lettre::Address>().is_err() {
        return Err("an address");
    }
    Ok(Form {
        email,
        name,
        outlet,
        wants: Wants {
            topics,
            langs,
            delivery,
        },
        trap,
    })
}

/// A name or outlet as a header and a page may carry it: one line, no control
/// characters, at most `MAX_TEXT` characters.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_TEXT)
        .collect()
}

/// Whether a POST comes from the site's own pages: its `Origin` is `base_url`'s, or
/// without one its `Referer` is on that origin; with neither, allowed.
pub fn same_origin(headers: &HeaderMap, base_url: &url::Url) -> bool {
    let ours = base_url.origin().ascii_serialization();
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.to_str().is_ok_and(|o| o == ours);
    }
    if let Some(referer) = headers.get(header::REFERER) {
        return referer
            .to_str()
            .ok()
            .and_then(|r| url::Url::parse(r).ok())
            .is_some_and(|r| r.origin().ascii_serialization() == ours);
    }
    true
}

/// `POST /subscribe`.
pub async fn post(
    State(shared): State<Arc<Shared>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let site = shared.site();
    let config = &site.config;
    if !same_origin(&headers, &config.site.base_url) {
        return forbidden();
    }
    if !config.subscribe.open {
        return rendered(&shared, StatusCode::NOT_FOUND, Page::Invalid, None, None);
    }
    let public = &config.paths.public;
    let offered_topic = |t: &Topic| public.join(t.path()).join("index.html").is_file();
    let offered_lang = |l: &LangTag| {
        public
            .join(format!("lang/{}/", l.key()))
            .join("index.html")
            .is_file()
    };
    let form = match read_form(&body, &offered_topic, &offered_lang) {
        Ok(form) => form,
        Err(_) => return rendered(&shared, StatusCode::BAD_REQUEST, Page::Invalid, None, None),
    };
    let client = match peer {
        Some(axum::Extension(Peer(peer))) => client_of(
            peer.ip(),
            headers.get_all("x-forwarded-for").iter(),
            &config.http.trusted_proxies,
        ),
        None => IpAddr::from([0, 0, 0, 0]),
    };
    // Full: dropped here, behind the same answer.
    if shared.desk.tx.try_send(Signup { form, client }).is_err() {
        tracing::debug!("the sign-up queue is full: a sign-up is dropped");
    }
    rendered(&shared, StatusCode::OK, Page::Sent, None, None)
}

/// `GET /confirm/<token>`: the question, with a button that posts; nothing changes.
pub async fn ask(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let Some(hash) = token_hash(&token) else {
        return rendered(
            &shared,
            StatusCode::BAD_REQUEST,
            Page::LinkInvalid,
            None,
            None,
        );
    };
    let now = clock::now();
    let held = shared
        .ledger
        .call_async(move |l| l.signup(&hash))
        .await
        .ok()
        .flatten()
        .is_some_and(|s| s.expires_at > now);
    if !held {
        return rendered(
            &shared,
            StatusCode::BAD_REQUEST,
            Page::LinkInvalid,
            None,
            None,
        );
    }
    let url = confirm_url(&shared.site().config, &token);
    rendered(&shared, StatusCode::OK, Page::Confirm, Some(&url), None)
}

/// `POST /confirm/<token>`: the subscription, once.
pub async fn confirm(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers, &shared.site().config.site.base_url) {
        return forbidden();
    }
    let Some(hash) = token_hash(&token) else {
        return rendered(
            &shared,
            StatusCode::BAD_REQUEST,
            Page::LinkInvalid,
            None,
            None,
        );
    };
    let now = clock::now();
    match shared
        .ledger
        .call_async(move |l| l.confirm_signup(&hash, now))
        .await
    {
        Ok(Confirmed::Subscribed(row)) => {
            tracing::info!(target: "pressroom::signup", "a sign-up was confirmed");
            rendered(
                &shared,
                StatusCode::OK,
                Page::Subscribed,
                None,
                Some(&row.address),
            )
        }
        Ok(Confirmed::Unknown | Confirmed::Expired) => rendered(
            &shared,
            StatusCode::BAD_REQUEST,
            Page::LinkInvalid,
            None,
            None,
        ),
        Err(e) => {
            tracing::error!("cannot record a confirmation: {e}");
            shared.metrics.error("signup", clock::now());
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "60")],
                "the confirmation could not be recorded; try again\n",
            )
                .into_response()
        }
    }
}

/// The ledger's key of a confirmation token: its SHA-256, hex. Only tokens as `token`
/// makes them (43 base64url characters) are looked up.
pub fn token_hash(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != TOKEN_BYTES {
        return None;
    }
    Some(
        Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

const TOKEN_BYTES: usize = 32;

/// A fresh confirmation token: 32 random bytes, base64url.
fn token() -> Option<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn confirm_url(config: &Config, token: &str) -> String {
    format!("{}confirm/{token}", config.site.base_url)
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "a form of another site cannot post here\n",
    )
        .into_response()
}

/// The per-client limit: when each client's recent sign-ups came (at most `PER_CLIENT`).
#[derive(Default)]
struct Clients(HashMap<IpAddr, VecDeque<DateTime<Utc>>>);

impl Clients {
    /// Whether `client` may sign up at `now`; counts it if so.
    fn admit(&mut self, client: IpAddr, now: DateTime<Utc>) -> bool {
        if self.0.len() >= CLIENTS_REMEMBERED {
            self.0
                .retain(|_, seen| seen.back().is_some_and(|t| *t + CLIENT_PERIOD > now));
        }
        let seen = self.0.entry(client).or_default();
        while seen.front().is_some_and(|t| *t + CLIENT_PERIOD <= now) {
            seen.pop_front();
        }
        if seen.len() >= PER_CLIENT {
            return false;
        }
        seen.push_back(now);
        true
    }
}

/// The daemon's task behind the form: takes each sign-up in turn until `stop`.
pub async fn work(shared: Arc<Shared>, stop: CancellationToken) {
    let taken = shared
        .desk
        .rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some(mut rx) = taken else {
        return;
    };
    let mut clients = Clients::default();
    let full_reported = AtomicBool::new(false);
    loop {
        let signup = tokio::select! {
            () = stop.cancelled() => break,
            s = rx.recv() => match s {
                Some(s) => s,
                None => break,
            },
        };
        let now = clock::now();
        if signup.form.trap {
            tracing::info!(target: "pressroom::signup", "a sign-up with the honeypot filled is dropped");
            continue;
        }
        if !clients.admit(signup.client, now) {
            tracing::info!(target: "pressroom::signup", "a client past its sign-up limit: dropped");
            continue;
        }
        take(&shared, signup.form, now, &full_reported).await;
    }
}

/// One sign-up into the ledger with its confirmation mail, unless the ledger's limits say
/// no; the outbox is woken for a letter.
async fn take(shared: &Shared, form: Form, now: DateTime<Utc>, full_reported: &AtomicBool) {
    let site = shared.site();
    let config = &site.config;
    let Some(token) = token() else {
        tracing::error!("no randomness for a confirmation token: a sign-up is dropped");
        return;
    };
    let Some(hash) = token_hash(&token) else {
        return;
    };
    let address = form.email.to_lowercase();
    let within =
        TimeDelta::from_std(config.subscribe.confirm_within).unwrap_or(TimeDelta::hours(48));
    let row = SignupRow {
        address: address.clone(),
        email: form.email.clone(),
        name: form.name.clone(),
        outlet: form.outlet.clone(),
        choices: form.wants.to_choices(),
        created_at: now,
        expires_at: now + within,
    };
    let lang = &config.site.lang;
    let url = confirm_url(config, &token);
    let mail = match signup::confirmation_mail(config, &site.templates, lang, &form.email, &url)
        .or_else(|_| signup::confirmation_mail(config, &site.built_in, lang, &form.email, &url))
    {
        Ok(mail) => mail,
        Err(e) => {
            tracing::error!("cannot compose a confirmation mail: {e}");
            return;
        }
    };
    let letter = Letter {
        to: form.email.clone(),
        name: form.name.clone(),
        kind: "confirm".into(),
        lang: lang.as_str().to_string(),
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        attachments: Vec::new(),
        message_id: outbox::message_id(config),
    };
    let key = shared.key.limit_key(&address);
    let queued = shared
        .ledger
        .call_async(move |l| {
            l.queue_confirmation(
                &key,
                &hash,
                &row,
                &letter,
                now,
                ADDRESS_PERIOD,
                WAITING_BOUND,
            )
        })
        .await;
    match queued {
        Ok(Queued::Letter(_)) => {
            full_reported.store(false, Ordering::Relaxed);
            shared.desk.wake.wake();
        }
        Ok(Queued::Limited) => tracing::info!(
            target: "pressroom::signup",
            "an address was sent a confirmation within the hour: no other is sent"
        ),
        Ok(Queued::Full) => {
            if !full_reported.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{WAITING_BOUND} sign-ups wait for their confirmation: new ones are dropped until some are confirmed or expire"
                );
            }
        }
        Err(e) => {
            tracing::error!("cannot record a sign-up: {e}");
            shared.metrics.error("signup", now);
        }
    }
}

/// A sign-up page in the site's language.
fn rendered(
    shared: &Shared,
    status: StatusCode,
    page: Page,
    confirm_url: Option<&str>,
    address: Option<&str>,
) -> Response {
    let site = shared.site();
    let lang = &site.config.site.lang;
    super::office_page(&site, status, "sign-up", |t| {
        signup::page(&site.config, t, page, lang, confirm_url, address)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<Form, &'static str> {
        read_form(body.as_bytes(), &|t| t.slug() != "hemligt", &|l| {
            l.as_str() == "sv"
        })
    }

    #[test]
    fn a_form_is_read_into_choices_and_bad_ones_are_refused() {
        let f = read("email=Ada%40example.org&name=Ada%0ALovelace&topic=M%C3%A4nniskohandel&topic=manniskohandel&lang=sv&delivery=digest&website=").unwrap();
        assert_eq!(f.email, "Ada@example.org");
        assert_eq!(f.name, "Ada Lovelace");
        assert_eq!(f.wants.topics.len(), 1);
        assert_eq!(f.wants.langs.len(), 1);
        assert_eq!(f.wants.delivery, Delivery::Digest);
        assert!(!f.trap);
        assert!(
            read("email=ada%40example.org&website=http%3A%2F%2Fspam")
                .unwrap()
                .trap
        );
        for bad in [
            "",
            "email=",
            "email=not-an-address",
            "email=ada%40example.org&topic=hemligt",
            "email=ada%40example.org&lang=en",
            "email=ada%40example.org&delivery=weekly",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_post_from_another_site_is_told_apart_by_origin_then_referer() {
        let base = url::Url::parse("https://press.example.org/").unwrap();
        let with = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            same_origin(&h, &base)
        };
        assert!(with(&[]));
        assert!(with(&[("origin", "https://press.example.org")]));
        assert!(!with(&[("origin", "https://evil.example.com")]));
        assert!(!with(&[("origin", "null")]));
        assert!(with(&[("referer", "https://press.example.org/topics/x/")]));
        assert!(!with(&[("referer", "http://press.example.org/")]));
        assert!(!with(&[
            ("origin", "https://evil.example.com"),
            ("referer", "https://press.example.org/")
        ]));
    }

    #[test]
    fn a_client_signs_up_five_times_in_ten_minutes() {
        let mut c = Clients::default();
        let ip = IpAddr::from([192, 0, 2, 7]);
        let t: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
        for _ in 0..PER_CLIENT {
            assert!(c.admit(ip, t));
        }
        assert!(!c.admit(ip, t + TimeDelta::minutes(9)));
        assert!(c.admit(IpAddr::from([192, 0, 2, 8]), t));
        assert!(c.admit(ip, t + CLIENT_PERIOD));
    }

    #[test]
    fn tokens_are_43_characters_and_hash_to_hex() {
        let t = token().unwrap();
        assert_eq!(t.len(), 43);
        assert_eq!(token_hash(&t).unwrap().len(), 64);
        assert_eq!(token_hash("short"), None);
    }
}
