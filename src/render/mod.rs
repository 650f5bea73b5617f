//! Renderers: from the plan (what is public at T) to the files of the site, as an
//! in-memory map from path to bytes. No IO here beyond what templates need; writing is
//! `output`'s job. Output depends only on config, releases and T, so it is reproducible.

pub mod feed;
pub mod guard;
pub mod images;
pub mod locale;
pub mod preferences;
pub mod share;
pub mod signup;
pub mod sitemap;
pub mod subscription;
pub mod templates;
pub mod view;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use foldhash::fast::FixedState;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use chrono::Datelike;
use minijinja::Value;
use serde::Serialize;

use crate::config::Config;
use crate::planner::Plan;
use crate::release::{LangTag, Release, Topic};
use feed::{Feed, Format};
pub use templates::Templates;
use view::{DateView, Labels, LinkView, ReleaseView, SiteView, TopicView};

/// A hash map with a fast hasher: keys here are our own paths and names, not input
/// an attacker chooses to collide. The renderer's memos use it, and so do the build's
/// caches above it.
pub type Map<K, V> = std::collections::HashMap<K, V, FixedState>;

/// One file of the built site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Bytes(Vec<u8>),
    /// An attachment, copied from the bundle.
    Copy {
        from: PathBuf,
        len: u64,
    },
    /// Already on disk exactly as it should be (the incremental builder knows it wrote it).
    Kept,
}

/// The whole site: relative path (with `/`) to content.
pub type Outputs = BTreeMap<String, Output>;

#[derive(Debug, thiserror::Error)]
#[error("template `{template}` failed for {page}: {source:#}")]
pub struct RenderError {
    pub template: &'static str,
    pub page: String,
    #[source]
    pub source: Failure,
}

/// Why a template did not give a page.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Template(#[from] minijinja::Error),
    /// A panic inside a renderer that no single release explains (see `guard::listings`).
    #[error("pressroom panicked: {0} (a bug in pressroom; please report it)")]
    Panicked(String),
}

/// Anything serialisable, as a template value.
fn value<T: Serialize>(x: T) -> Value {
    Value::from(minijinja::value::Serde(x))
}

#[derive(Serialize)]
struct FeedLink {
    #[serde(rename = "type")]
    media_type: &'static str,
    name: &'static str,
    title: String,
    url: String,
    /// The page's own feed (a topic page's topic feed; the site's elsewhere): the footer
    /// offers these, the head names every feed.
    own: bool,
}

/// The three formats of the feed in `dir` (`""` for the site's) titled `title`.
fn feed_links_at(dir: &str, title: &str, own: bool, config: &Config) -> Vec<FeedLink> {
    Format::ALL
        .iter()
        .map(|&f| FeedLink {
            media_type: f.media_type(),
            name: f.name(),
            title: format!("{title} ({})", f.name()),
            url: config.url(&format!("{dir}{}", f.file_name())).to_string(),
            own,
        })
        .collect()
}

fn feed_links(feed: &Feed<'_>, config: &Config) -> Vec<FeedLink> {
    feed_links_at(&feed.dir, &feed.title, true, config)
}

/// The title of a topic's feed.
fn topic_feed_title(config: &Config, name: &str) -> String {
    format!("{} – {name}", config.site.title)
}

#[derive(Serialize)]
struct ListItem<'a> {
    title: &'a str,
    url: String,
    lang: &'a str,
    date: DateView,
}

/// Each release's line in lists, made into a template value once per build however many
/// lists show it (a release is in its year's archive, its topics' pages and its language's).
struct ListItems<'a> {
    config: &'a Config,
    /// The site's words: lists are in its language.
    labels: &'a Labels,
    made: RefCell<Map<&'a str, Value>>,
}

impl<'a> ListItems<'a> {
    fn new(config: &'a Config, labels: &'a Labels) -> Self {
        ListItems {
            config,
            labels,
            made: RefCell::new(Default::default()),
        }
    }

    fn of(&self, releases: &[&'a Release]) -> Value {
        let mut made = self.made.borrow_mut();
        let items: Vec<Value> = releases
            .iter()
            .map(|r| {
                made.entry(r.slug.as_str())
                    .or_insert_with(|| {
                        value(ListItem {
                            title: &r.title,
                            url: self.config.url(&r.path()).to_string(),
                            lang: r.lang.as_str(),
                            date: DateView::new(
                                r.date,
                                self.config.site.timezone,
                                self.labels,
                                !r.date_only,
                            ),
                        })
                    })
                    .clone()
            })
            .collect();
        Value::from(items)
    }
}

/// The page of one release (public or withdrawn).
pub fn release_page(
    config: &Config,
    templates: &Templates,
    release: &Release,
) -> Result<Vec<u8>, RenderError> {
    // The site's feeds, and each of the release's topics' (a notice names none: it is in
    // no feed).
    let mut feeds = feed_links_at("", &config.site.title, true, config);
    if release.withdrawn.is_none() {
        for t in &release.topics {
            let dir = t.path();
            feeds.extend(feed_links_at(
                &dir,
                &topic_feed_title(config, t.name()),
                false,
                config,
            ));
        }
    }
    let ctx = minijinja::context! {
        site => value(SiteView::with_labels(config, templates.labels(&config.site.lang))),
        release => value(ReleaseView::with_labels(release, config, templates.labels(&release.lang))),
        lang => release.lang.as_str(),
        canonical => config.url(&release.path()).to_string(),
        description => if release.withdrawn.is_some() { "" } else { release.summary().unwrap_or_default() },
        feeds => value(&feeds),
    };
    templates
        .render("release.html", ctx)
        .map(String::into_bytes)
        .map_err(|source| RenderError {
            template: "release.html",
            page: release.path(),
            source: source.into(),
        })
}

/// The full content of a release's feed entries (`feed_item.html`): the lead image, the
/// text, the press contacts and the files, escaped by the template engine like a page.
/// `None` for a release whose text is not in memory.
pub fn feed_content(
    config: &Config,
    templates: &Templates,
    release: &Release,
) -> Result<Option<String>, RenderError> {
    if release.body.is_none() {
        return Ok(None);
    }
    let ctx = minijinja::context! {
        site => value(SiteView::with_labels(config, templates.labels(&config.site.lang))),
        release => value(ReleaseView::with_labels(release, config, templates.labels(&release.lang))),
        lang => release.lang.as_str(),
    };
    templates
        .render("feed_item.html", ctx)
        .map(Some)
        .map_err(|source| RenderError {
            template: "feed_item.html",
            page: release.path(),
            source: source.into(),
        })
}

/// The files a release publishes beside its page.
pub fn release_files(release: &Release) -> impl Iterator<Item = (String, Output)> + '_ {
    release.files().map(move |a| {
        (
            format!("{}{}", release.path(), a.name),
            Output::Copy {
                from: a.path.clone(),
                len: a.len,
            },
        )
    })
}

/// Everything that lists releases: the index, year archives, topic and language pages, the
/// feeds and the sitemap. These change whenever any release does; release pages do not.
///
/// `cache` maps each listing's path to a key of what it shows; a listing whose key is
/// unchanged and which `on_disk` confirms is already written becomes `Output::Kept`
/// instead of being rendered again. A one-off build passes an empty cache.
pub fn listings(
    config: &Config,
    templates: &Templates,
    plan: &Plan<'_>,
    cache: &mut Map<String, u64>,
    on_disk: &dyn Fn(&str) -> bool,
) -> Result<Outputs, RenderError> {
    let mut out = Outputs::new();
    let labels = templates.labels(&config.site.lang);
    let site = value(SiteView::with_labels(config, labels));
    let tz = config.site.timezone;
    let shown: Vec<&Release> = plan
        .public
        .iter()
        .chain(plan.withdrawn.iter())
        .copied()
        .collect();
    // Each topic under the name readers see: the config's, else its usual spelling among
    // the releases shown (newest first); listed in the config's order, then by slug.
    let mut spellings: Map<&str, Vec<&Topic>> = Map::default();
    for t in shown.iter().flat_map(|r| r.topics.iter()) {
        spellings.entry(t.slug()).or_default().push(t);
    }
    let mut topics: Vec<(&Topic, &str)> = spellings
        .values()
        .filter_map(|all| crate::topic::usual_spelling(all.iter().copied()))
        .map(|t| (t, config.topics.name(t)))
        .collect();
    topics.sort_by_key(|(t, _)| (config.topics.rank(t), t.slug()));
    let langs: HashSet<&LangTag, FixedState> = shown.iter().map(|r| &r.lang).collect();
    let langs: BTreeSet<&LangTag> = langs.into_iter().collect();
    let mut by_year: BTreeMap<i32, Vec<&Release>> = BTreeMap::new();
    for r in &plan.public {
        by_year
            .entry(r.date.with_timezone(&tz).year())
            .or_default()
            .push(r);
    }
    let mut sitemap = Vec::new();
    let lastmod = |r: &Release| Some(r.last_modified().with_timezone(&tz).to_rfc3339());

    let list_items = ListItems::new(config, labels);
    let cache = RefCell::new(cache);
    // Whether `path` can stay as written: its content is identified by `key`.
    let reuse = |path: &str, key: u64, out: &mut Outputs| {
        let mut cache = cache.borrow_mut();
        if cache.get(path) == Some(&key) && on_disk(path) {
            out.insert(path.to_string(), Output::Kept);
            return true;
        }
        cache.insert(path.to_string(), key);
        false
    };
    let page = |dir: &str,
                template: &'static str,
                feed: Option<&Feed<'_>>,
                key: u64,
                extra: &dyn Fn() -> Value,
                out: &mut Outputs| {
        let path = format!("{dir}index.html");
        if reuse(&path, key, out) {
            return Ok(());
        }
        // A page without a feed of its own (a year's archive) offers the site's.
        let feeds = match feed {
            Some(f) => feed_links(f, config),
            None => feed_links_at("", &config.site.title, true, config),
        };
        let ctx = minijinja::context! { site => site.clone(), feeds => value(&feeds), canonical => config.url(dir).to_string(), ..extra() };
        let html = templates
            .render(template, ctx)
            .map_err(|source| RenderError {
                template,
                page: dir.to_string(),
                source: source.into(),
            })?;
        out.insert(path, Output::Bytes(html.into_bytes()));
        Ok::<(), RenderError>(())
    };
    // Each release's feed content, rendered once per build however many feeds show it,
    // and only for a feed that is written.
    let contents = RefCell::new(feed::Contents::default());
    let emit_feed = |feed: &Feed<'_>, out: &mut Outputs| -> Result<(), RenderError> {
        let key = keyed(
            &(&feed.title, &feed.lang, feed.updated),
            &feed.entries,
            Release::page_key,
        );
        // An entry without its text (it could not be read again) makes a feed that is
        // rendered again by the next build rather than kept.
        let whole = feed.entries.iter().all(|r| r.body.is_some());
        for format in Format::ALL {
            let path = format!("{}{}", feed.dir, format.file_name());
            if !reuse(&path, key, out) {
                let mut made = contents.borrow_mut();
                for r in &feed.entries {
                    if !made.contains_key(r.slug.as_str())
                        && let Some(html) = feed_content(config, templates, r)?
                    {
                        made.insert(r.slug.to_string(), html);
                    }
                }
                out.insert(
                    path.clone(),
                    Output::Bytes(feed.render(config, format, &made)),
                );
                if !whole {
                    cache.borrow_mut().remove(&path);
                }
            }
        }
        Ok(())
    };

    // The main feeds, and the front page: the newest releases with their leads, the press
    // office's contacts, ways in (topics, languages, years, search) and ways to subscribe.
    let main = Feed::new(
        String::new(),
        config.site.title.clone(),
        config.site.lang.clone(),
        &plan.public,
        config,
        plan.at,
    );
    emit_feed(&main, &mut out)?;
    let years: Vec<LinkView> = by_year
        .keys()
        .rev()
        .map(|y| LinkView {
            name: y.to_string(),
            url: config.url(&format!("archive/{y}/")).to_string(),
        })
        .collect();
    let topic_links: Vec<TopicView> = topics
        .iter()
        .map(|(t, name)| TopicView::new(t, name, config))
        .collect();
    let lang_links: Vec<LangLink> = langs
        .iter()
        .map(|l| LangLink {
            name: labels.language_name(l),
            lang: l.as_str().to_string(),
            url: config.url(&format!("lang/{}/", l.key())).to_string(),
        })
        .collect();
    let names = |links: &[LinkView]| links.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
    let topic_names: Vec<(&str, &str)> = topic_links
        .iter()
        .map(|t| (t.name.as_str(), t.slug.as_str()))
        .collect();
    let lang_names: Vec<(&str, &str)> = lang_links
        .iter()
        .map(|l| (l.name.as_str(), l.url.as_str()))
        .collect();
    // The sign-up form offers the topics and languages the site shows (each topic and
    // language page ticks its own); its key is part of every page that carries it.
    let form_langs: Vec<(&str, &str)> = lang_links
        .iter()
        .map(|l| (l.name.as_str(), l.lang.as_str()))
        .collect();
    let signup_form = |topic: Option<&str>, lang: Option<&str>| {
        signup::form(config, &topic_names, &form_langs, topic, lang)
    };
    let form_key = hash_of(&signup_form(None, None));
    // The main feed's entries are the ones whose texts a long-running builder keeps, so
    // the front page never shows more of them than it has leads for.
    let front = &main.entries[..main.entries.len().min(FRONT_ITEMS)];
    let key = keyed(
        &(
            names(&years),
            &topic_names,
            lang_names,
            &config.site.contacts,
            form_key,
        ),
        front,
        front_key,
    );
    let index = || {
        minijinja::context! {
            releases => Value::from(front.iter().map(|r| value(FrontItem::new(r, config, labels))).collect::<Vec<_>>()),
            years => value(&years),
            topics => value(&topic_links),
            languages => value(&lang_links),
            contacts => value(&config.site.contacts),
            signup => value(signup_form(None, None)),
        }
    };
    page("", "index.html", Some(&main), key, &index, &mut out)?;
    // A lead that could not be read again is missing from the page: render it again next
    // time rather than keep it.
    if front.iter().any(|r| r.body.is_none()) {
        cache.borrow_mut().remove("index.html");
    }
    // The page every miss is answered with (`http`): static per build, so it can echo
    // nothing of a request, and it shows only what the index shows.
    let key = keyed(
        &("404", names(&years), &topic_names),
        &[],
        Release::list_key,
    );
    if !reuse("404.html", key, &mut out) {
        let ctx = minijinja::context! { site => site.clone(), years => value(&years), topics => value(&topic_links) };
        let html = templates
            .render("404.html", ctx)
            .map_err(|source| RenderError {
                template: "404.html",
                page: "404.html".into(),
                source: source.into(),
            })?;
        out.insert("404.html".into(), Output::Bytes(html.into_bytes()));
    }
    // The form on a page of its own, `GET /subscribe` (none while sign-ups are closed).
    if let Some(form) = signup_form(None, None) {
        let ctx = || minijinja::context! { signup => value(&form) };
        page(
            "subscribe/",
            "subscribe.html",
            None,
            form_key,
            &ctx,
            &mut out,
        )?;
    }
    sitemap.push(sitemap::Page {
        loc: config.url("").to_string(),
        lastmod: plan.public.first().and_then(|r| lastmod(r)),
    });

    // The archives, each in pages: years, then topics and languages (these with feeds).
    let mut archives: Vec<Archive<'_>> = Vec::new();
    let archive = &labels.archive;
    for (year, releases) in by_year.iter().rev() {
        let heading = format!("{archive} {year}");
        archives.push(Archive {
            dir: format!("archive/{year}/"),
            own: hash_of(&heading),
            heading,
            releases: releases.clone(),
            feed: None,
            topic: None,
            signup: None,
        });
    }

    // One pass over the public releases fills every topic and language list, newest first.
    let mut by_topic: BTreeMap<&Topic, Vec<&Release>> =
        topics.iter().map(|(t, _)| (*t, Vec::new())).collect();
    let mut by_lang: BTreeMap<&LangTag, Vec<&Release>> =
        langs.iter().map(|l| (*l, Vec::new())).collect();
    for r in &plan.public {
        for t in &r.topics {
            if let Some(list) = by_topic.get_mut(t) {
                list.push(r);
            }
        }
        if let Some(list) = by_lang.get_mut(&r.lang) {
            list.push(r);
        }
    }
    // A feed's title names the site (a feed reader lists many); a page's heading does not
    // (the site's name heads every page): "Människohandel", "Pressmeddelanden på svenska".
    let groups = topics
        .iter()
        .zip(topic_links.iter().cloned())
        .filter_map(|((t, name), view)| {
            let releases = by_topic.remove(t)?;
            Some((
                t.path(),
                topic_feed_title(config, name),
                name.to_string(),
                config.site.lang.clone(),
                releases,
                Some(view),
                signup_form(Some(t.slug()), None),
            ))
        })
        .chain(by_lang.into_iter().map(|(l, releases)| {
            (
                format!("lang/{}/", l.key()),
                format!("{} ({l})", config.site.title),
                format!("{} {}", labels.languages, labels.language_name(l)),
                l.clone(),
                releases,
                None,
                signup_form(None, Some(l.as_str())),
            )
        }));
    for (dir, title, heading, lang, releases, topic, signup) in groups {
        let feed = Feed::new(dir.clone(), title.clone(), lang, &releases, config, plan.at);
        emit_feed(&feed, &mut out)?;
        let description = topic.as_ref().and_then(|t| t.description.as_deref());
        archives.push(Archive {
            own: hash_of(&(&title, &heading, description)),
            dir,
            heading,
            releases,
            feed: Some(feed),
            topic,
            signup,
        });
    }

    // Page 1 of an archive at its folder, page n at `page/n/` under it, newest first. Each
    // page is keyed by what it shows, so a changed line re-renders its own page only; a
    // release lifting moves every page's oldest line onto the next page.
    for a in &archives {
        let total = a.releases.len().div_ceil(PAGE_SIZE).max(1);
        for n in 1..=total {
            let shown = a.releases.chunks(PAGE_SIZE).nth(n - 1).unwrap_or_default();
            let dir = page_dir(&a.dir, n);
            let items = || {
                minijinja::context! {
                    heading => a.heading.clone(),
                    releases => list_items.of(shown),
                    topic => value(&a.topic),
                    pagination => value(Pagination::new(config, &a.dir, n, total)),
                    signup => value(&a.signup),
                }
            };
            page(
                &dir,
                "list.html",
                a.feed.as_ref(),
                keyed(
                    &(a.own, n, total, hash_of(&a.signup)),
                    shown,
                    Release::list_key,
                ),
                &items,
                &mut out,
            )?;
            sitemap.push(sitemap::Page {
                loc: config.url(&dir).to_string(),
                lastmod: shown
                    .iter()
                    .map(|r| r.last_modified())
                    .max()
                    .map(|t| t.with_timezone(&tz).to_rfc3339()),
            });
        }
    }

    let listed: Vec<(&str, &Option<String>)> = sitemap
        .iter()
        .map(|p| (p.loc.as_str(), &p.lastmod))
        .collect();
    let key = keyed(&listed, &plan.public, |r| {
        let mut h = DefaultHasher::new();
        (r.last_modified(), &r.slug).hash(&mut h);
        h.finish()
    });
    if !reuse("sitemap.xml", key, &mut out) {
        for r in &plan.public {
            sitemap.push(sitemap::Page {
                loc: config.url(&r.path()).to_string(),
                lastmod: lastmod(r),
            });
        }
        out.insert(
            "sitemap.xml".into(),
            Output::Bytes(sitemap::write(&sitemap)),
        );
    }
    Ok(out)
}

/// Releases on each page of an archive (a year's, a topic's, a language's). At 10,000
/// releases one list was 10,000 lines, rendered again whenever any line changed; pages of
/// 50 keep a page quick to read and to render, and 200 pages is still few files.
pub const PAGE_SIZE: usize = 50;

/// Releases on the front page with their leads, at most (and never more than the site's
/// feed holds: see `listings`).
pub const FRONT_ITEMS: usize = 10;

/// The folder of page `n` (from 1) of the archive in `dir`: page 1 is the archive's own
/// folder, so its URL stays what it was before archives had pages.
pub fn page_dir(dir: &str, n: usize) -> String {
    if n <= 1 {
        dir.to_string()
    } else {
        format!("{dir}page/{n}/")
    }
}

/// One archive before it is cut into pages.
struct Archive<'a> {
    dir: String,
    heading: String,
    /// A hash of the archive's own fields (its heading, title and description).
    own: u64,
    releases: Vec<&'a Release>,
    feed: Option<Feed<'a>>,
    topic: Option<TopicView>,
    /// The sign-up form with this archive's topic or language ticked (none on a year's).
    signup: Option<signup::Form>,
}

/// Where a page of an archive sits among the others, for `rel=prev/next` and the visible
/// page links.
#[derive(Serialize)]
struct Pagination {
    current: usize,
    total: usize,
    prev: Option<String>,
    next: Option<String>,
    /// The first and last pages and those near the current one, in order; a gap between
    /// them is a link without a number.
    links: Vec<PageLink>,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
struct PageLink {
    /// None for a gap (`…`).
    number: Option<usize>,
    url: String,
    current: bool,
}

impl Pagination {
    fn new(config: &Config, dir: &str, current: usize, total: usize) -> Pagination {
        let url = |n: usize| config.url(&page_dir(dir, n)).to_string();
        let mut links = Vec::new();
        let mut last = 0;
        for n in 1..=total {
            if n == 1 || n == total || n.abs_diff(current) <= 2 {
                if n > last + 1 {
                    links.push(PageLink {
                        number: None,
                        url: String::new(),
                        current: false,
                    });
                }
                links.push(PageLink {
                    number: Some(n),
                    url: url(n),
                    current: n == current,
                });
                last = n;
            }
        }
        Pagination {
            current,
            total,
            prev: (current > 1).then(|| url(current - 1)),
            next: (current < total).then(|| url(current + 1)),
            links,
        }
    }
}

/// A language's archive as the front page links it.
#[derive(Serialize)]
struct LangLink {
    /// In the site's language (`engelska`).
    name: String,
    lang: String,
    url: String,
}

/// A release on the front page: its line in lists, its lead and its image.
#[derive(Serialize)]
struct FrontItem<'a> {
    title: &'a str,
    url: String,
    lang: &'a str,
    date: DateView,
    /// The lead as text; empty when the text is not in memory.
    summary: &'a str,
    thumb: Option<Thumb>,
}

/// A release's image as a thumbnail. For now the published image itself, drawn into a
/// fixed 16:9 box (`object-fit: cover` in the stylesheet) so the page never jumps as images
/// load; a resized web version, when the media pipeline makes one, goes in `url` here with
/// its own size, and nothing else changes.
#[derive(Serialize)]
struct Thumb {
    url: String,
    width: u32,
    height: u32,
}

/// The thumbnail box, in CSS pixels.
const THUMB_SIZE: (u32, u32) = (160, 90);

impl<'a> FrontItem<'a> {
    fn new(r: &'a Release, config: &Config, labels: &Labels) -> Self {
        let url = config.url(&r.path());
        FrontItem {
            title: &r.title,
            url: url.to_string(),
            lang: r.lang.as_str(),
            date: DateView::new(r.date, config.site.timezone, labels, !r.date_only),
            summary: r.summary().unwrap_or_default(),
            thumb: r.image.as_ref().map(|i| Thumb {
                url: url
                    .join(&i.name)
                    .map_or_else(|_| url.to_string(), |u| u.to_string()),
                width: THUMB_SIZE.0,
                height: THUMB_SIZE.1,
            }),
        }
    }
}

/// What the front page shows of a release: its list line, its page (the lead) and which
/// image it has.
fn front_key(r: &Release) -> u64 {
    hash_of(&(
        r.list_key(),
        r.page_key(),
        r.image.as_ref().map(|i| (&i.name, i.len)),
    ))
}

fn hash_of(x: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

/// Identifies a listing's content: its own fields and, in order, what it shows of each
/// release (`Release::list_key` for a list of links, `Release::page_key` for a feed).
fn keyed(own: &impl Hash, releases: &[&Release], shown: impl Fn(&Release) -> u64) -> u64 {
    let mut h = DefaultHasher::new();
    own.hash(&mut h);
    for r in releases {
        shown(r).hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_show_the_ends_and_the_pages_near_the_current_one() {
        let (config, _) = Config::parse(
            "[site]\nbase_url = \"https://press.example.org/\"\n",
            std::path::Path::new("c.toml"),
            std::path::Path::new("/srv"),
        )
        .expect("valid");
        let p = Pagination::new(&config, "topics/miljo/", 6, 20);
        let shown: Vec<Option<usize>> = p.links.iter().map(|l| l.number).collect();
        assert_eq!(
            shown,
            [
                Some(1),
                None,
                Some(4),
                Some(5),
                Some(6),
                Some(7),
                Some(8),
                None,
                Some(20)
            ]
        );
        assert!(p.links[4].current);
        assert_eq!(
            p.prev.as_deref(),
            Some("https://press.example.org/topics/miljo/page/5/")
        );
        assert_eq!(p.links[0].url, "https://press.example.org/topics/miljo/");
        let first = Pagination::new(&config, "archive/2018/", 1, 1);
        assert_eq!((first.prev, first.next), (None, None));
        assert_eq!(page_dir("lang/sv/", 1), "lang/sv/");
        assert_eq!(page_dir("lang/sv/", 3), "lang/sv/page/3/");
    }
}
