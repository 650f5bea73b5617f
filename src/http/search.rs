//! `GET /search?q=…&page=…`: the results page, rendered with the site's templates from the
//! search index of the build being served (`search::INDEX`), so it shows exactly the
//! releases the served pages show. The index is read once per version of its file (a build
//! renames a new one into place) and kept in memory for the linear scan of `search`.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Shared;
use super::gzip::Stamp;
use crate::render::view::{DateView, SiteView};
use crate::search::{Index, Query};

/// The index last read, with the stamp of the file it came from.
#[derive(Default)]
pub struct Loaded {
    index: Mutex<Option<(Stamp, Arc<Index>)>>,
}

/// The index file is ours and a few MB at 10,000 releases; a larger one is not read.
const MAX_INDEX: u64 = 256 << 20;

impl Loaded {
    /// The index a build just committed to `public`, handed over by the daemon: the entries
    /// are the builder's own, so the daemon holds them once, and no request parses the
    /// file again. Taken for the file now on disk (its stamp).
    pub fn offer(&self, public: &Path, index: Arc<Index>) {
        let Ok(meta) = std::fs::metadata(public.join(crate::search::INDEX)) else {
            return;
        };
        let mut loaded = self.index.lock().unwrap_or_else(|p| p.into_inner());
        *loaded = Some((Stamp::of(&meta), index));
    }

    /// The index of the site in `public`, read again only when a build replaced its file.
    /// No file (a site built before search existed) is an empty index.
    pub fn index(&self, public: &Path) -> Arc<Index> {
        let Ok(mut file) = std::fs::File::open(public.join(crate::search::INDEX)) else {
            return Arc::default();
        };
        // The stamp of the opened file: the one whose bytes are read, even if a build
        // renames another into place meanwhile.
        let Ok(meta) = file.metadata() else {
            return Arc::default();
        };
        if !meta.is_file() || meta.len() > MAX_INDEX {
            return Arc::default();
        }
        let stamp = Stamp::of(&meta);
        // One reader parses a new file; searches meanwhile wait for it rather than parse
        // it too.
        let mut loaded = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((known, index)) = &*loaded
            && *known == stamp
        {
            return Arc::clone(index);
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        if file.read_to_end(&mut bytes).is_err() {
            return Arc::default();
        }
        let index = Arc::new(Index::from_bytes(&bytes));
        *loaded = Some((stamp, Arc::clone(&index)));
        index
    }
}

#[derive(Serialize)]
struct Hit<'a> {
    title: &'a str,
    url: &'a str,
    lang: &'a str,
    date: DateView,
    summary: &'a str,
}

/// The results page. The query is shown back escaped (the templates autoescape), and
/// nothing is found that the served site does not show.
pub async fn results(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (mut typed, mut page) = (String::new(), 1usize);
    for (key, value) in url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
    {
        match key.as_ref() {
            "q" if typed.is_empty() => {
                typed = value.chars().take(crate::search::MAX_QUERY_CHARS).collect()
            }
            "page" => page = value.parse().unwrap_or(1),
            _ => {}
        }
    }
    let query = Query::parse(&typed);
    let site = shared.site();
    let index = shared.search.index(&site.config.paths.public);
    let found = index.search(&query, crate::clock::now(), page);
    let config = &site.config;
    let tz = config.site.timezone;
    let labels = site.templates.labels(&config.site.lang);
    let hits: Vec<Hit<'_>> = found
        .entries
        .iter()
        .map(|e| Hit {
            title: &e.title,
            url: &e.url,
            lang: &e.lang,
            date: DateView::new(e.date, tz, labels, !e.date_only),
            summary: &e.summary,
        })
        .collect();
    let link = |page: usize| {
        let mut url = config.url("search");
        url.query_pairs_mut()
            .append_pair("q", &query.text)
            .append_pair("page", &page.to_string());
        url.to_string()
    };
    let ctx = minijinja::context! {
        site => minijinja::Value::from(minijinja::value::Serde(SiteView::with_labels(config, labels))),
        query => &query.text,
        results => minijinja::Value::from(minijinja::value::Serde(&hits)),
        total => found.total,
        page => found.page,
        pages => found.pages,
        first => (found.page - 1) * crate::search::PER_PAGE + 1,
        previous => (found.page > 1).then(|| link(found.page - 1)),
        next => (found.page < found.pages).then(|| link(found.page + 1)),
    };
    // The office's templates failing here (a runaway loop) get the built-in page instead,
    // as a build does.
    let html = site
        .templates
        .render("search.html", ctx.clone())
        .or_else(|e| {
            tracing::warn!("search.html: {e:#}");
            crate::render::Templates::built_in().render("search.html", ctx)
        });
    match html {
        Ok(html) => (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("search.html: {e:#}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "search failed\n",
            )
                .into_response()
        }
    }
}
