//! The unsubscribe link of every mail: `GET /unsubscribe/<token>` shows a confirmation page
//! (a link scanner following the URL must not unsubscribe anyone), and `POST` to the same
//! URL, from that page's button or from a mail client's RFC 8058 one-click, records the
//! opt-out. The opt-out is committed to the ledger before the reply: an acknowledged
//! unsubscribe is never lost. A token that does not verify changes nothing.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use pulldown_cmark_escape::{FmtWriter, escape_html};

use super::Shared;
use crate::clock;
use crate::ledger::OptOutSource;

pub async fn confirm(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let Some(address) = shared.key.verify(&token) else {
        return invalid();
    };
    let site = shared.site();
    page(
        StatusCode::OK,
        &site.title,
        "Avsluta prenumeration · Unsubscribe",
        &format!(
            "<p>Sluta skicka pressmeddelanden till <strong>{}</strong>?<br>\
             Stop sending press releases to <strong>{}</strong>?</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Avsluta · Unsubscribe</button></form>",
            escaped(&address),
            escaped(&address)
        ),
    )
}

pub async fn one_click(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(address) = shared.key.verify(&token) else {
        return invalid();
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
            let site = shared.site();
            page(
                StatusCode::OK,
                &site.title,
                "Avslutad · Unsubscribed",
                &format!(
                    "<p><strong>{}</strong> får inga fler pressmeddelanden.<br>\
                     <strong>{}</strong> will receive no more press releases.</p>",
                    escaped(&address),
                    escaped(&address)
                ),
            )
        }
        Err(e) => {
            tracing::error!("cannot record an opt-out: {e}");
            shared.metrics.error("optout", clock::now());
            unavailable()
        }
    }
}

fn escaped(s: &str) -> String {
    let mut out = String::new();
    let _ = escape_html(FmtWriter(&mut out), s);
    out
}

fn page(status: StatusCode, site: &str, heading: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{heading} – {site}</title></head>\
         <body><main><h1>{heading}</h1>{body}</main></body></html>\n",
        site = escaped(site),
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn invalid() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        Html("<!doctype html>\n<title>Ogiltig länk · Invalid link</title><p>Länken gäller inte. This unsubscribe link is not valid.</p>\n"),
    )
        .into_response()
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "60")],
        "the opt-out could not be recorded; try again\n",
    )
        .into_response()
}
