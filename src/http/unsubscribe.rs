//! The unsubscribe link of every mail: `GET /unsubscribe/<token>` shows a page that asks
//! (a link scanner following the URL must not unsubscribe anyone), and `POST` to the same
//! URL, from that page's button or from a mail client's RFC 8058 one-click, records the
//! opt-out and answers with a page that offers the undo: a `POST` to
//! `/unsubscribe/<token>/undo` lifts the opt-out of the address that token names, and no
//! other. Each write is committed to the ledger before the reply: an acknowledged
//! unsubscribe (or undo) is never lost. A token that does not verify changes nothing and
//! gets a page saying so (400). Links of either token format work (`optout`: the opaque
//! one mail carries, and the old one that showed the address, in mails sent before); the
//! pages' buttons always carry the opaque one, and the address the pages show (masked) is
//! the one the token decrypts to.
//!
//! The pages are the office's templates (`render::subscription`) in the language of the
//! mail the link came from: the mail's footer adds `?lang=` when the release's language
//! is not the site's, and the pages carry it on to their buttons. The HTTP server holds no
//! media list, and the mail's language is the one the reader just read.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Shared, Site};
use crate::clock;
use crate::ledger::OptOutSource;
use crate::release::LangTag;
use crate::render::subscription::{self, Link, Page};

pub async fn confirm(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let site = shared.site();
    let asked = asked_lang(query.as_deref());
    let Some(address) = shared.key.verify(&token) else {
        return invalid(&site, asked.as_ref());
    };
    page(&site, Page::Confirm, asked.as_ref(), &address, &shared)
}

pub async fn one_click(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let asked = asked_lang(query.as_deref());
    let Some(address) = shared.key.verify(&token) else {
        return invalid(&shared.site(), asked.as_ref());
    };
    // A form post from our page comes from a browser; RFC 8058 posts come from mail clients.
    let source = if headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
    {
        OptOutSource::Link
    } else {
        OptOutSource::OneClick
    };
    let who = address.clone();
    let now = clock::now();
    let recorded = shared
        .ledger
        .call_async(move |l| l.unsubscribe(&who, source, now))
        .await;
    match recorded {
        Ok(_) => {
            tracing::info!(target: "pressroom::optout", "unsubscribed by link");
            page(
                &shared.site(),
                Page::Unsubscribed,
                asked.as_ref(),
                &address,
                &shared,
            )
        }
        Err(e) => {
            tracing::error!("cannot record an opt-out: {e}");
            shared.metrics.error("optout", clock::now());
            unavailable()
        }
    }
}

/// The undo of the page after unsubscribing: the opt-out of the address the token names
/// is lifted (the token proves the reader holds that mailbox's mail, as it did for the
/// opt-out). Asked again, or for an address not opted out, it answers the same page.
pub async fn undo(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let asked = asked_lang(query.as_deref());
    let Some(address) = shared.key.verify(&token) else {
        return invalid(&shared.site(), asked.as_ref());
    };
    let who = address.clone();
    let now = clock::now();
    let lifted = shared
        .ledger
        .call_async(move |l| l.resubscribe(&who, OptOutSource::Link, now))
        .await;
    match lifted {
        Ok(_) => {
            tracing::info!(target: "pressroom::optout", "resubscribed by link");
            page(
                &shared.site(),
                Page::Resubscribed,
                asked.as_ref(),
                &address,
                &shared,
            )
        }
        Err(e) => {
            tracing::error!("cannot lift an opt-out: {e}");
            shared.metrics.error("optout", clock::now());
            unavailable()
        }
    }
}

/// `?lang=en`: the language a page was asked in, if it names one.
pub(super) fn asked_lang(query: Option<&str>) -> Option<LangTag> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "lang")
        .and_then(|(_, tag)| LangTag::parse(&tag).ok())
}

/// A page about the address a genuine token names, its buttons posting to the token's
/// URLs in the same language.
fn page(
    site: &Site,
    page: Page,
    asked: Option<&LangTag>,
    address: &str,
    shared: &Shared,
) -> Response {
    let query = asked.map_or_else(String::new, |tag| format!("?lang={}", tag.as_str()));
    let base = format!(
        "{}unsubscribe/{}",
        site.config.site.base_url,
        shared.key.token(address)
    );
    let unsubscribe_url = format!("{base}{query}");
    let undo_url = format!("{base}/undo{query}");
    let link = Link {
        address,
        unsubscribe_url: &unsubscribe_url,
        undo_url: &undo_url,
    };
    rendered(site, StatusCode::OK, page, asked, Some(link))
}

fn invalid(site: &Site, asked: Option<&LangTag>) -> Response {
    rendered(site, StatusCode::BAD_REQUEST, Page::Invalid, asked, None)
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "60")],
        "the opt-out could not be recorded; try again\n",
    )
        .into_response()
}

/// An unsubscribe page in the language asked (else the site's).
fn rendered(
    site: &Site,
    status: StatusCode,
    page: Page,
    asked: Option<&LangTag>,
    link: Option<Link<'_>>,
) -> Response {
    let lang = asked.unwrap_or(&site.config.site.lang);
    super::office_page(site, status, "unsubscribe", |t| {
        subscription::page(&site.config, t, page, lang, link)
    })
}
