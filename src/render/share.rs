//! What a link to a release page shows when it is pasted into a chat, a social network or
//! a search engine: Open Graph and Twitter card properties and a schema.org `NewsArticle`
//! in JSON-LD. Only a public release's page carries them: before the lift there is no page
//! at all, and a withdrawal notice has none.

use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::json;

use super::locale::og_locale;
use super::view::FileView;
use crate::config::Config;
use crate::release::Release;

/// One `<meta>`: `property` (Open Graph) or `name` (Twitter), and its content.
#[derive(Serialize)]
pub struct Meta {
    pub key: &'static str,
    pub content: String,
}

#[derive(Serialize)]
pub struct ShareView {
    /// `<meta property=… content=…>`.
    pub open_graph: Vec<Meta>,
    /// `<meta name=… content=…>`.
    pub twitter: Vec<Meta>,
    /// The `NewsArticle` as JSON, safe to print inside `<script>` as it is: `<`, `>` and
    /// `&` are written as `\u003c`, `\u003e` and `\u0026`, so no title can close the
    /// element.
    pub json_ld: String,
}

impl ShareView {
    /// `image`: the release's image as the page shows it (the web-sized version where one
    /// is made: what a preview fetches should be light), with its size when known.
    pub fn new(release: &Release, config: &Config, shown: Option<&FileView>) -> ShareView {
        let image = shown.map(|i| i.url.as_str());
        let url = config.url(&release.path()).to_string();
        let summary = release.summary().unwrap_or_default().to_string();
        // In the site's zone, as the page's `<time>` elements and the feeds write them.
        let tz = config.site.timezone;
        let published = release
            .date
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        let modified = release
            .last_modified()
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        let alt = release.image_alt.clone().unwrap_or_default();
        let meta = |key, content: &str| Meta {
            key,
            content: content.to_string(),
        };

        let mut open_graph = vec![
            meta("og:type", "article"),
            meta("og:title", &release.title),
            meta("og:description", &summary),
            meta("og:url", &url),
            meta("og:site_name", &config.site.title),
            meta("og:locale", &og_locale(&release.lang)),
        ];
        if let Some(image) = image {
            open_graph.push(meta("og:image", image));
            if let Some((w, h)) = shown.and_then(|i| i.width.zip(i.height)) {
                open_graph.push(meta("og:image:width", &w.to_string()));
                open_graph.push(meta("og:image:height", &h.to_string()));
            }
            if !alt.is_empty() {
                open_graph.push(meta("og:image:alt", &alt));
            }
        }
        open_graph.push(meta("article:published_time", &published));
        open_graph.push(meta("article:modified_time", &modified));
        for topic in &release.topics {
            open_graph.push(meta("article:tag", topic.name()));
        }

        let mut twitter = vec![
            meta(
                "twitter:card",
                if image.is_some() {
                    "summary_large_image"
                } else {
                    "summary"
                },
            ),
            meta("twitter:title", &release.title),
            meta("twitter:description", &summary),
        ];
        if let Some(image) = image {
            twitter.push(meta("twitter:image", image));
            if !alt.is_empty() {
                twitter.push(meta("twitter:image:alt", &alt));
            }
        }

        let organisation = json!({
            "@type": "Organization",
            "name": config.site.author,
            "url": config.site.base_url.as_str(),
        });
        let mut article = json!({
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": release.title,
            "description": summary,
            "url": url,
            "mainEntityOfPage": { "@type": "WebPage", "@id": url },
            "datePublished": published,
            "dateModified": modified,
            "inLanguage": release.lang.as_str(),
            "publisher": organisation,
            "author": organisation,
        });
        if let Some(image) = image {
            article["image"] = json!([image]);
        }
        ShareView {
            open_graph,
            twitter,
            json_ld: script_safe(&article.to_string()),
        }
    }
}

/// JSON that can sit inside an HTML `<script>` element: `</script>` and `<!--` cannot
/// appear in it. Each of the three characters only occurs inside JSON strings, where
/// its `\u` escape means the same.
fn script_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_cannot_close_the_script_element() {
        let json = json!({ "headline": "</script><script>alert(1)</script> & <!--" });
        let safe = script_safe(&json.to_string());
        assert!(!safe.contains('<') && !safe.contains('>'), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, json);
    }
}
