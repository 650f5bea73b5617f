//! A mail's preferences link: `GET /preferences/<token>` shows the reader's choices as a
//! form (their own subscriber row, else their row of the press office's media list, else
//! every topic and language, each release) and changes nothing; a `POST` to it saves their
//! choices as their own (`subscribers`: a media-list journalist gets a row, which wins over
//! the list's), pauses or resumes, leaves (an opt-out, source `preferences`), or mails the
//! address — the one place a request made with a forwarded link is confirmed — their data,
//! an erase link, or (once they left) a link that subscribes them again (letters posted to
//! the outbox, `mail::notice`). Those links,
//! `/erase/<token>` and `/resubscribe/<token>`, carry their own sealed, expiring tokens
//! (`optout::Purpose`) and likewise only ask on GET and act on POST.
//!
//! Every POST here must come from the site's own pages (`signup::same_origin`, the sign-up
//! form's rule): an `Origin` (or, without one, a `Referer`) of another origin than
//! `[site] base_url`'s is refused with 403. A request with neither is no browser's
//! cross-site form (browsers send `Origin` with every POST) and is let through.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::signup::same_origin;
use super::unsubscribe::asked_lang;
use super::{Shared, Site};
use crate::clock;
use crate::ledger::{Choices, LedgerError, MEDIA, OptOutSource, SubscriberRow};
use crate::mail::notice::{self, Notice};
use crate::mail::outbox;
use crate::optout::Purpose;
use crate::release::{LangTag, Topic};
use crate::render::preferences::{self as pages, Choice, Form, LinkPage, Standing};
use crate::render::subscription::{self, Page};

use crate::subscriber::{Delivery, Wants};

/// How long a mailed erase or subscribe-again link works.
const LINK_LIFETIME: chrono::Duration = chrono::Duration::hours(24);
/// At most one mail of each kind from these pages per address in this time: a reader who
/// presses a button twice, or a script holding a forwarded link, cannot flood the mailbox.
const MAIL_EVERY: Duration = Duration::from_secs(60);
/// At most this many addresses are remembered for `MAIL_EVERY` (bounded memory).
const REMEMBERED: usize = 10_000;
/// Topics and languages read from one form at most.
const MAX_CHOICES: usize = 100;

/// When each address was last mailed each kind of mail from these pages.
#[derive(Default)]
pub struct Mailed(std::sync::Mutex<HashMap<(String, &'static str), Instant>>);

impl Mailed {
    /// Whether a mail of `kind` to `address` may leave now; if so, it is counted.
    fn admit(&self, address: &str, kind: &'static str, now: Instant) -> bool {
        let key = (address.to_string(), kind);
        let mut seen = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() >= REMEMBERED {
            seen.retain(|_, at| now.duration_since(*at) < MAIL_EVERY);
        }
        match seen.get(&key) {
            Some(at) if now.duration_since(*at) < MAIL_EVERY => false,
            _ if seen.len() >= REMEMBERED => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

/// What the ledger holds that the page shows.
struct Held {
    subscriber: Option<SubscriberRow>,
    listed: Option<crate::ledger::AudienceRow>,
    opted_out: bool,
}

fn held(l: &mut crate::ledger::Ledger, address: &str) -> Result<Held, LedgerError> {
    Ok(Held {
        subscriber: l.subscriber(address)?,
        listed: l.listed(MEDIA, &[address.to_string()])?.remove(address),
        opted_out: l.is_opted_out(address)?,
    })
}

/// The reader's choices: their own, else the media list's row, else everything.
fn wants_of(held: &Held) -> (Wants, bool) {
    if let Some(s) = &held.subscriber {
        return (Wants::from_choices(&s.choices), false);
    }
    if let Some(row) = &held.listed {
        let choices = Choices {
            topics: row.topics.clone(),
            langs: row.lang.clone().unwrap_or_default(),
            delivery: Delivery::Each.as_str().to_string(),
        };
        return (Wants::from_choices(&choices), true);
    }
    (Wants::default(), false)
}

/// The languages the site publishes in: its own, and each with a language page.
fn site_languages(site: &Site) -> Vec<LangTag> {
    let mut langs = vec![site.config.site.lang.clone()];
    if let Ok(dir) = std::fs::read_dir(site.config.paths.public.join("lang")) {
        let mut found: Vec<LangTag> = dir
            .filter_map(Result::ok)
            .filter_map(|e| LangTag::parse(&e.file_name().to_string_lossy()).ok())
            .collect();
        found.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        for tag in found {
            if !langs.iter().any(|l| l.as_str() == tag.as_str()) {
                langs.push(tag);
            }
        }
    }
    langs
}

fn form_choices(site: &Site, lang: &LangTag, wants: &Wants) -> (Vec<Choice>, Vec<Choice>) {
    let config = &site.config;
    let mut topics: Vec<Topic> = config.topics.iter().map(|e| e.topic.clone()).collect();
    for t in &wants.topics {
        if !topics.contains(t) {
            topics.push(t.clone());
        }
    }
    let topics = topics
        .iter()
        .map(|t| Choice {
            value: config.topics.name(t).to_string(),
            name: config.topics.name(t).to_string(),
            checked: wants.topics.contains(t),
        })
        .collect();
    let mut langs = site_languages(site);
    for l in &wants.langs {
        if !langs.iter().any(|x| x.as_str() == l.as_str()) {
            langs.push(l.clone());
        }
    }
    let labels = site.templates.labels(lang);
    let langs = langs
        .iter()
        .map(|l| Choice {
            value: l.as_str().to_string(),
            name: labels.language_name(l),
            checked: wants.langs.iter().any(|w| w.as_str() == l.as_str()),
        })
        .collect();
    (topics, langs)
}

fn query_of(asked: Option<&LangTag>) -> String {
    asked.map_or_else(String::new, |tag| format!("?lang={}", tag.as_str()))
}

pub async fn show(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let site = shared.site();
    let asked = asked_lang(query.as_deref());
    let Some(address) = shared.key.verify(&token) else {
        return invalid(&site, asked.as_ref());
    };
    let who = address.clone();
    match shared.ledger.call_async(move |l| held(l, &who)).await {
        Ok(h) => form_page(&shared, &site, asked.as_ref(), &address, &h, None),
        Err(e) => failed(&shared, e),
    }
}

/// What a POST of the form asks.
enum Action {
    Save(Wants),
    Pause,
    Resume,
    Leave,
    Again,
    Export,
    Erase,
}

fn action_of(body: &[u8]) -> Option<Action> {
    let mut action = None;
    let mut topics = Vec::new();
    let mut langs = Vec::new();
    let mut all_topics = false;
    let mut all_langs = false;
    let mut delivery = Delivery::Each;
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "action" => action = Some(v.into_owned()),
            "topic" if topics.len() < MAX_CHOICES => {
                if let Ok(t) = Topic::parse(&v)
                    && !topics.contains(&t)
                {
                    topics.push(t);
                }
            }
            "lang" if langs.len() < MAX_CHOICES => {
                if let Ok(l) = LangTag::parse(&v)
                    && !langs.iter().any(|x: &LangTag| x.as_str() == l.as_str())
                {
                    langs.push(l);
                }
            }
            "all_topics" => all_topics = true,
            "all_langs" => all_langs = true,
            "delivery" => delivery = Delivery::parse(&v).unwrap_or_default(),
            _ => {}
        }
    }
    Some(match action?.as_str() {
        "save" => Action::Save(Wants {
            topics: if all_topics { Vec::new() } else { topics },
            langs: if all_langs { Vec::new() } else { langs },
            delivery,
        }),
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        "leave" => Action::Leave,
        "again" => Action::Again,
        "export" => Action::Export,
        "erase" => Action::Erase,
        _ => return None,
    })
}

/// Their own subscriber row with `change` applied: the row they have, else one made from
/// their media-list row (their name and outlet as the office wrote them), else from the
/// address alone; a new row is confirmed now (the token proves the mailbox is theirs).
fn own_row(
    l: &mut crate::ledger::Ledger,
    address: &str,
    now: DateTime<Utc>,
    change: &dyn Fn(&mut SubscriberRow),
) -> Result<(), LedgerError> {
    // An erased address stays erased: nothing is written about it again until it
    // subscribes again itself (the link mailed to it).
    if l.is_erased(address)? {
        return Ok(());
    }
    let h = held(l, address)?;
    let (wants, _) = wants_of(&h);
    let mut row = match h.subscriber {
        Some(row) => row,
        None => {
            let (email, name, outlet) = match &h.listed {
                Some(r) => (r.email.clone(), r.name.clone(), r.outlet.clone()),
                None => (address.to_string(), String::new(), String::new()),
            };
            SubscriberRow {
                address: address.to_string(),
                email,
                name,
                outlet,
                choices: wants.to_choices(),
                paused: false,
                confirmed_at: now,
                updated_at: now,
                digest_from: now,
            }
        }
    };
    change(&mut row);
    row.updated_at = now;
    l.put_subscriber(&row)
}

pub async fn act(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let site = shared.site();
    let asked = asked_lang(query.as_deref());
    if !same_origin(&headers, &site.config.site.base_url) {
        return cross_site();
    }
    let Some(address) = shared.key.verify(&token) else {
        return invalid(&site, asked.as_ref());
    };
    let Some(action) = action_of(&body) else {
        return (StatusCode::BAD_REQUEST, "no such action\n").into_response();
    };
    let now = clock::now();
    let who = address.clone();
    let lang = asked
        .clone()
        .unwrap_or_else(|| site.config.site.lang.clone());
    let base = site.config.site.base_url.to_string();
    let q = query_of(asked.as_ref());
    let notice = match action {
        Action::Save(wants) => {
            let choices = wants.to_choices();
            let done = shared
                .ledger
                .call_async(move |l| own_row(l, &who, now, &|r| r.choices = choices.clone()))
                .await;
            if let Err(e) = done {
                return failed(&shared, e);
            }
            pages::Notice::Saved
        }
        Action::Pause | Action::Resume => {
            let paused = matches!(action, Action::Pause);
            let done = shared
                .ledger
                .call_async(move |l| own_row(l, &who, now, &|r| r.paused = paused))
                .await;
            if let Err(e) = done {
                return failed(&shared, e);
            }
            if paused {
                pages::Notice::Paused
            } else {
                pages::Notice::Resumed
            }
        }
        Action::Leave => {
            let done = shared
                .ledger
                .call_async(move |l| l.unsubscribe(&who, OptOutSource::Preferences, now))
                .await;
            if let Err(e) = done {
                return failed(&shared, e);
            }
            tracing::info!(target: "pressroom::optout", "unsubscribed on the preferences page");
            pages::Notice::Left
        }
        Action::Again | Action::Export | Action::Erase => {
            let mail = match action {
                Action::Export => {
                    let export = shared.ledger.call_async(move |l| l.export(&who)).await;
                    match export {
                        Ok(e) => Notice::Export {
                            json: serde_json::to_string_pretty(&serde_json::Value::Object(e))
                                .unwrap_or_default(),
                        },
                        Err(e) => return failed(&shared, e),
                    }
                }
                Action::Erase => {
                    let t = shared.key.timed_token(
                        Purpose::Erase,
                        &address,
                        (now + LINK_LIFETIME).timestamp(),
                    );
                    Notice::EraseLink {
                        url: format!("{base}erase/{t}{q}"),
                    }
                }
                _ => {
                    let opted_out = shared
                        .ledger
                        .call_async(move |l| l.is_opted_out(&who))
                        .await;
                    match opted_out {
                        Ok(true) => {}
                        // Not opted out: nothing to confirm; the page says where they stand.
                        Ok(false) => {
                            return refreshed(&shared, &site, asked.as_ref(), &address, None).await;
                        }
                        Err(e) => return failed(&shared, e),
                    }
                    let t = shared.key.timed_token(
                        Purpose::Resubscribe,
                        &address,
                        (now + LINK_LIFETIME).timestamp(),
                    );
                    Notice::ResubscribeLink {
                        url: format!("{base}resubscribe/{t}{q}"),
                    }
                }
            };
            let (answer, kind) = match mail {
                Notice::Export { .. } => (pages::Notice::DataSent, "export"),
                Notice::EraseLink { .. } => (pages::Notice::EraseSent, "erase"),
                Notice::ResubscribeLink { .. } => (pages::Notice::ConfirmSent, "again"),
            };
            // Pressed again within the minute: the same answer, no second mail.
            if shared.mailed.admit(&address, kind, Instant::now()) {
                let letter = notice::letter(
                    &site.config,
                    &site.templates,
                    &lang,
                    &address,
                    &mail,
                    outbox::message_id(&site.config),
                );
                let posted = shared
                    .ledger
                    .call_async(move |l| outbox::post(l, &letter, now))
                    .await;
                if let Err(e) = posted {
                    return failed(&shared, e);
                }
                shared.desk.wake.wake();
            }
            answer
        }
    };
    refreshed(&shared, &site, asked.as_ref(), &address, Some(notice)).await
}

/// The page as the ledger has it now, with the answer to what was just done.
async fn refreshed(
    shared: &Shared,
    site: &Site,
    asked: Option<&LangTag>,
    address: &str,
    notice: Option<pages::Notice>,
) -> Response {
    let who = address.to_string();
    match shared.ledger.call_async(move |l| held(l, &who)).await {
        Ok(h) => form_page(shared, site, asked, address, &h, notice),
        Err(e) => failed(shared, e),
    }
}

fn form_page(
    shared: &Shared,
    site: &Site,
    asked: Option<&LangTag>,
    address: &str,
    h: &Held,
    notice: Option<pages::Notice>,
) -> Response {
    let lang = asked.unwrap_or(&site.config.site.lang);
    let (wants, from_list) = wants_of(h);
    let (topics, langs) = form_choices(site, lang, &wants);
    let action_url = format!(
        "{}preferences/{}{}",
        site.config.site.base_url,
        shared.key.token(address),
        query_of(asked)
    );
    let standing = if h.opted_out {
        Standing::OptedOut
    } else if h.subscriber.as_ref().is_some_and(|s| s.paused) {
        Standing::Paused
    } else {
        Standing::Active
    };
    let form = Form {
        address,
        standing,
        from_list,
        topics,
        langs,
        delivery: wants.delivery.as_str(),
        action_url: &action_url,
        notice,
    };
    super::office_page(site, StatusCode::OK, "preferences", |t| {
        pages::page(&site.config, t, lang, &form)
    })
}

/// `GET /erase/<token>`: asks, with a button.
pub async fn erase_show(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    link_show(&shared, Purpose::Erase, &token, query.as_deref()).await
}

/// `GET /resubscribe/<token>`: asks, with a button.
pub async fn again_show(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    link_show(&shared, Purpose::Resubscribe, &token, query.as_deref()).await
}

/// The question, or once it is done (the address erased, or not opted out any more) the
/// page that says so: a used link offers nothing to press again.
async fn link_show(
    shared: &Shared,
    purpose: Purpose,
    token: &str,
    query: Option<&str>,
) -> Response {
    let site = shared.site();
    let asked = asked_lang(query);
    let Some(address) = live(shared, purpose, token) else {
        return invalid(&site, asked.as_ref());
    };
    let who = address.clone();
    let done = shared
        .ledger
        .call_async(move |l| match purpose {
            Purpose::Erase => l.is_erased(&who),
            Purpose::Resubscribe => l.is_opted_out(&who).map(|out| !out),
        })
        .await;
    let done = match done {
        Ok(done) => done,
        Err(e) => return failed(shared, e),
    };
    let lang = asked.as_ref().unwrap_or(&site.config.site.lang);
    let path = match purpose {
        Purpose::Erase => "erase",
        Purpose::Resubscribe => "resubscribe",
    };
    let url = format!(
        "{}{path}/{token}{}",
        site.config.site.base_url,
        query_of(asked.as_ref())
    );
    let which = match (purpose, done) {
        (Purpose::Erase, false) => LinkPage::EraseAsk,
        (Purpose::Erase, true) => LinkPage::Erased,
        (Purpose::Resubscribe, false) => LinkPage::AgainAsk,
        (Purpose::Resubscribe, true) => LinkPage::Again,
    };
    super::office_page(&site, StatusCode::OK, "preferences", |t| {
        pages::link_page(&site.config, t, lang, which, &address, &url)
    })
}

/// The address of a genuine token of `purpose` that has not expired.
fn live(shared: &Shared, purpose: Purpose, token: &str) -> Option<String> {
    let (address, expires) = shared.key.verify_timed(purpose, token)?;
    (clock::now().timestamp() < expires).then_some(address)
}

/// `POST /erase/<token>`: erases the address as `pressroom subscribers erase` does.
pub async fn erase_act(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    link_act(&shared, Purpose::Erase, &token, query.as_deref(), &headers).await
}

/// `POST /resubscribe/<token>`: lifts the address's opt-out (and an erasure).
pub async fn again_act(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    link_act(
        &shared,
        Purpose::Resubscribe,
        &token,
        query.as_deref(),
        &headers,
    )
    .await
}

async fn link_act(
    shared: &Shared,
    purpose: Purpose,
    token: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let site = shared.site();
    let asked = asked_lang(query);
    if !same_origin(headers, &site.config.site.base_url) {
        return cross_site();
    }
    let Some(address) = live(shared, purpose, token) else {
        return invalid(&site, asked.as_ref());
    };
    let now = clock::now();
    let who = address.clone();
    let done = match purpose {
        Purpose::Erase => {
            shared
                .ledger
                .call_async(move |l| l.erase(&who, now).map(|_| ()))
                .await
        }
        Purpose::Resubscribe => {
            shared
                .ledger
                .call_async(move |l| {
                    l.unerase(&who)?;
                    l.resubscribe(&who, OptOutSource::Preferences, now)
                        .map(|_| ())
                })
                .await
        }
    };
    if let Err(e) = done {
        return failed(shared, e);
    }
    tracing::info!(target: "pressroom::optout", "{} by a mailed link", match purpose {
        Purpose::Erase => "erased",
        Purpose::Resubscribe => "resubscribed",
    });
    let lang = asked.as_ref().unwrap_or(&site.config.site.lang);
    let which = match purpose {
        Purpose::Erase => LinkPage::Erased,
        Purpose::Resubscribe => LinkPage::Again,
    };
    super::office_page(&site, StatusCode::OK, "preferences", |t| {
        pages::link_page(&site.config, t, lang, which, &address, "")
    })
}

fn cross_site() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CACHE_CONTROL, "no-store")],
        "this form may be sent from the newsroom's own pages only\n",
    )
        .into_response()
}

fn invalid(site: &Site, asked: Option<&LangTag>) -> Response {
    let lang = asked.unwrap_or(&site.config.site.lang);
    super::office_page(site, StatusCode::BAD_REQUEST, "preferences", |t| {
        subscription::page(&site.config, t, Page::Invalid, lang, None)
    })
}

fn failed(shared: &Shared, e: LedgerError) -> Response {
    tracing::error!("the preferences page cannot read or write the ledger: {e}");
    shared.metrics.error("preferences", clock::now());
    unavailable()
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "60")],
        "that could not be done just now; try again in a minute\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_from_the_pages_leaves_once_a_minute_per_address_and_kind() {
        let m = Mailed::default();
        let t = Instant::now();
        assert!(m.admit("a@example.org", "erase", t));
        assert!(!m.admit("a@example.org", "erase", t + Duration::from_secs(59)));
        assert!(m.admit("a@example.org", "export", t));
        assert!(m.admit("b@example.org", "erase", t));
        assert!(m.admit("a@example.org", "erase", t + Duration::from_secs(61)));
    }
}
