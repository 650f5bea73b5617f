//! The configuration file `config/pressroom.toml`: parsed once into typed values (URLs,
//! mailboxes, time zones, cron schedules, durations) so nothing downstream handles raw
//! strings. `Config::parse` is pure; `Config::load` does the file IO.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use lettre::message::Mailbox;
use url::Url;

use crate::contact::Contact;
use crate::diagnostic::{Diagnostic, Location, SourceText};
use crate::lang::LangTag;
use crate::schema::{self, Located, TableReader};
use crate::topic::Topic;

/// Where the config is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/pressroom.toml";

#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any (embedded defaults have none).
    pub file: Option<PathBuf>,
    pub site: Site,
    pub paths: Paths,
    pub http: Http,
    pub mail: Mail,
    pub dispatch: Dispatch,
    pub watch: Watch,
    pub subscribe: Subscribe,
    pub websub_hubs: Vec<Url>,
    pub webhooks: Vec<Url>,
    pub topics: Topics,
}

/// `[topics]` (optional): the office's own name for each topic, the order topics are
/// listed in (the table's), and a description for each topic's page. A release may write
/// a topic any way that folds to the same slug (`miljo` for `Miljö`); the table's name is
/// what readers see.
#[derive(Debug, Clone, Default)]
pub struct Topics(Vec<TopicEntry>);

#[derive(Debug, Clone)]
pub struct TopicEntry {
    pub topic: Topic,
    pub description: Option<String>,
}

impl Topics {
    /// The table's entry for a topic (any spelling of it).
    pub fn get(&self, topic: &Topic) -> Option<&TopicEntry> {
        self.0.iter().find(|e| e.topic.slug() == topic.slug())
    }

    /// The name readers see for a topic: the table's, else the topic's own.
    pub fn name<'a>(&'a self, topic: &'a Topic) -> &'a str {
        self.get(topic).map_or(topic.name(), |e| e.topic.name())
    }

    /// Where a topic is listed: its place in the table, after every entry if absent.
    pub fn rank(&self, topic: &Topic) -> usize {
        self.0
            .iter()
            .position(|e| e.topic.slug() == topic.slug())
            .unwrap_or(self.0.len())
    }

    pub fn iter(&self) -> impl Iterator<Item = &TopicEntry> {
        self.0.iter()
    }
}

#[derive(Debug, Clone)]
pub struct Site {
    pub title: String,
    /// Always ends with `/`.
    pub base_url: Url,
    pub lang: LangTag,
    pub timezone: Tz,
    pub publish_time: NaiveTime,
    pub author: String,
    pub feed_items: usize,
    /// `[[site.contacts]]`: the organisation's press contacts, on the front page (a
    /// release names its own in its front matter, by the same fields).
    pub contacts: Vec<Contact>,
}

impl Site {
    /// The authority used in `tag:` ids: the base URL's host.
    pub fn domain(&self) -> &str {
        self.base_url.host_str().unwrap_or("localhost")
    }
}

#[derive(Debug, Clone)]
pub struct Paths {
    pub releases: PathBuf,
    pub public: PathBuf,
    pub state: PathBuf,
    pub media: PathBuf,
    pub templates: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Http {
    pub listen: SocketAddr,
    /// Where `/metrics` (and `/healthz` too) are served: loopback by default, since the
    /// counts say how many releases are embargoed.
    pub admin_listen: SocketAddr,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses or CIDR
    /// networks); empty by default, when every peer is the client itself.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `[subscribe]`: how journalists manage their own subscription: whether they may sign
/// up on the newsroom, when the daily digest leaves, how long a confirmation link lives,
/// and the mailbox that takes `mailto:` unsubscribes.
#[derive(Debug, Clone)]
pub struct Subscribe {
    /// Whether the newsroom offers its sign-up form (`open = true`, the default).
    pub open: bool,
    /// When the daily digest leaves: a cron expression in the site's time zone
    /// (default 07:00 every day).
    pub digest: cron::Schedule,
    /// How long a confirmation link works (default 48 h); unconfirmed sign-ups are
    /// purged after it.
    pub confirm_within: Duration,
    /// Where a mail client's `mailto:` unsubscribe goes (`List-Unsubscribe`). None: mail
    /// offers only the HTTPS link. Never the `reply_to`, which is a person's inbox: this
    /// mailbox is meant to be piped into `pressroom unsubscribe --from-mail`.
    pub unsubscribe_mailbox: Option<lettre::Address>,
}

/// The daily digest's default time: 07:00 every day, site time.
pub const DEFAULT_DIGEST: &str = "0 0 7 * * *";

impl Default for Subscribe {
    fn default() -> Subscribe {
        Subscribe {
            open: true,
            digest: cron::Schedule::from_str(DEFAULT_DIGEST).expect("the default digest parses"),
            confirm_within: Duration::from_secs(48 * 3600),
            unsubscribe_mailbox: None,
        }
    }
}

/// `[watch]`: how the daemon learns of changes besides inotify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub rescan: Rescan,
}

/// `[watch] rescan`: periodic rescans of the releases and config folders, for where file
/// events cannot be trusted (a network file system, edited from other machines; a watcher
/// that could not be set up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescan {
    /// `"auto"` (the default): every `AUTO_RESCAN`, only where needed.
    Auto,
    /// A duration: at that interval, wherever the folders are (a file system the daemon
    /// does not recognise as shared).
    Every(Duration),
    /// `"off"`: never; changes inotify cannot see wait for SIGHUP.
    Off,
}

/// The interval of `rescan = "auto"`.
pub const AUTO_RESCAN: Duration = Duration::from_secs(30);

impl Rescan {
    /// The interval where a rescan is done, `None` if turned off.
    pub fn interval(self) -> Option<Duration> {
        match self {
            Rescan::Auto => Some(AUTO_RESCAN),
            Rescan::Every(d) => Some(d),
            Rescan::Off => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub subject_prefix: String,
    pub transport: Transport,
    /// Messages per second.
    pub rate: f64,
    /// SMTP connections.
    pub concurrency: usize,
    /// How long the server may take to accept a connection (greeting, EHLO, TLS, login)
    /// and, separately, to take each message; past it the attempt counts as deferred.
    pub timeout: Duration,
    pub dkim: Option<Dkim>,
}

#[derive(Debug, Clone)]
pub enum Transport {
    /// `.eml` files in a folder: the default, so a fresh checkout needs no mail server.
    File { outbox: PathBuf },
    Smtp {
        url: Url,
        /// How the connection is encrypted, from the URL's scheme and its `tls=` parameter.
        tls: Tls,
        user: Option<String>,
        password: Option<Secret>,
        /// Certificates to trust besides the public roots (a relay with its own CA).
        tls_ca: Option<FileRef>,
    },
}

/// How an SMTP connection is encrypted. Parsed here, once, from the URL: `smtps://` is
/// implicit TLS, `smtp://` is STARTTLS under `tls=required` or `tls=opportunistic` and
/// clear text without `tls=`; any other `tls=` is a config error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=required`: STARTTLS or fail.
    Required,
    /// `smtp://…?tls=opportunistic`: STARTTLS when offered.
    Opportunistic,
    /// `smtp://`: plain (a relay on localhost).
    None,
}

impl Tls {
    /// The mode an SMTP URL names (the URL already checked to be `smtp://` or `smtps://`).
    pub fn of(url: &Url) -> Result<Tls, String> {
        let mode = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        match (url.scheme(), mode.as_deref()) {
            ("smtps", None | Some("required" | "opportunistic")) => Ok(Tls::Implicit),
            (_, Some("required")) => Ok(Tls::Required),
            (_, Some("opportunistic")) => Ok(Tls::Opportunistic),
            (_, None) => Ok(Tls::None),
            (_, Some(other)) => Err(format!("unknown TLS mode tls={other}")),
        }
    }
}

/// Where systemd's `LoadCredential` put the service's credentials
/// (`$CREDENTIALS_DIRECTORY`), if it did: [`Secret::Credential`] names a file in it.
pub fn credentials_dir() -> Option<PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from)
}

/// A file named in the config, and where it was named: read later, its problems still
/// point at the config line.
#[derive(Debug, Clone)]
pub struct FileRef {
    pub path: PathBuf,
    pub written_at: Location,
}

/// Where a secret is read from. Never the config file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    File(PathBuf),
    Env(String),
    /// A name in systemd's `$CREDENTIALS_DIRECTORY`.
    Credential(String),
}

#[derive(Debug, Clone)]
pub struct Dkim {
    /// A private key in PEM: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
    pub key: FileRef,
    pub selector: String,
}

#[derive(Debug, Clone)]
pub struct Dispatch {
    /// When mail may leave, evaluated in the site's time zone.
    pub window: cron::Schedule,
    pub catch_up: Duration,
    pub max_retry_age: Duration,
    /// Mail of a release never leaves from a version younger than this, counted from when
    /// the daemon first saw its content: a file written in pieces, and an undo window.
    pub hold: Duration,
}

const DEFAULT_WINDOW: &str = "* * 7-17 * * Mon-Fri";

impl Config {
    /// The embedded defaults: a site that works with no file at all, rooted at `root`.
    pub fn defaults(root: &Path) -> Config {
        Config::parse("", Path::new("(defaults)"), root)
            .map(|(config, _)| config)
            .unwrap_or_else(|_| unreachable!("the empty config is valid"))
    }

    /// Reads the config at `path`; a missing file at the default location means defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<(Config, Vec<Diagnostic>)> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_PATH), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok((Config::defaults(Path::new(".")), Vec::new()));
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "{}: cannot read the config: {e}",
                    path.display()
                ));
            }
        };
        let root = root_of(&path);
        match Config::parse(&text, &path, &root) {
            Ok((mut config, warnings)) => {
                config.file = Some(path);
                Ok((config, warnings))
            }
            Err(diags) => Err(ConfigInvalid(diags).into()),
        }
    }

    /// Parses config text. Paths are resolved against `root`, the config folder's parent.
    pub fn parse(
        text: &str,
        path: &Path,
        root: &Path,
    ) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
        let src = SourceText::whole(path, text);
        let mut diags = Vec::new();
        let Some(doc) = schema::parse_document(&src, text, &mut diags) else {
            return Err(diags);
        };
        let mut top = TableReader::new(src, doc.get_ref(), 0..0, "the config");
        let site = read_site(top.table("site", &mut diags), &mut diags);
        let paths = read_paths(top.table("paths", &mut diags), root, &mut diags);
        let http = read_http(top.table("http", &mut diags), &mut diags);
        let mail = read_mail(top.table("mail", &mut diags), root, &paths, &mut diags);
        let dispatch = read_dispatch(top.table("dispatch", &mut diags), &mut diags);
        let watch = read_watch(top.table("watch", &mut diags), &mut diags);
        let subscribe = read_subscribe(top.table("subscribe", &mut diags), &mut diags);
        let websub_hubs = match top.table("websub", &mut diags) {
            Some(mut t) => {
                let hubs = urls(&mut t, "hubs", &mut diags);
                t.finish(&mut diags);
                hubs
            }
            None => Vec::new(),
        };
        let topics = read_topics(top.table("topics", &mut diags), &mut diags);
        let mut webhooks = Vec::new();
        for mut t in top.tables("webhooks", &mut diags) {
            if let Some(u) = url(&mut t, "url", &mut diags) {
                webhooks.push(u);
            } else if t.raw("url").is_none() {
                diags.push(t.missing("url", "url = \"https://example.org/hook\""));
            }
            t.finish(&mut diags);
        }
        top.finish(&mut diags);
        if diags.iter().any(Diagnostic::is_error) {
            return Err(diags);
        }
        let config = Config {
            file: None,
            site,
            paths,
            http,
            mail,
            dispatch,
            watch,
            subscribe,
            websub_hubs,
            webhooks,
            topics,
        };
        Ok((config, diags))
    }

    /// A URL under the site, from a path relative to the root (`releases/du-avgor/`).
    pub fn url(&self, path: &str) -> Url {
        self.site
            .base_url
            .join(path)
            .unwrap_or_else(|_| self.site.base_url.clone())
    }
}

/// The config could not be used; every problem found is inside.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigInvalid(pub Vec<Diagnostic>);

/// The project root for a config file: its folder's parent.
pub fn root_of(config_path: &Path) -> PathBuf {
    let folder = config_path.parent().unwrap_or(Path::new("."));
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    folder.parent().map_or_else(
        || PathBuf::from("."),
        |p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        },
    )
}

fn parse_or<T, E: std::fmt::Display>(
    t: &TableReader<'_, '_>,
    value: Option<Located<String>>,
    parse: impl Fn(&str) -> Result<T, E>,
    expected: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let (text, span) = value?;
    match parse(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(
                t.error(span, format!("`{text}`: {e}"))
                    .expected(expected.to_string()),
            );
            None
        }
    }
}

fn url(t: &mut TableReader<'_, '_>, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<Url> {
    let value = t.string(key, diags);
    parse_or(
        t,
        value,
        absolute_url,
        "an absolute http:// or https:// URL",
        diags,
    )
}

/// A URL readers see, such as `base_url`.
fn public(
    t: &mut TableReader<'_, '_>,
    key: &'static str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Url> {
    let value = t.string(key, diags);
    parse_or(
        t,
        value,
        public_url,
        "an absolute http:// or https:// URL without a user name or password",
        diags,
    )
}

/// URLs readers see, such as the WebSub hubs named in every feed.
fn urls(t: &mut TableReader<'_, '_>, key: &'static str, diags: &mut Vec<Diagnostic>) -> Vec<Url> {
    let items = t.string_list(key, diags).unwrap_or_default();
    items
        .into_iter()
        .filter_map(|item| {
            parse_or(
                t,
                Some(item),
                public_url,
                "an absolute http:// or https:// URL without a user name or password",
                diags,
            )
        })
        .collect()
}

fn absolute_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| e.to_string())?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(url),
        _ => Err("not an http(s) URL with a host".into()),
    }
}

/// A URL that readers see (the site's, a hub's): no user name or password in it, which
/// would be in every page, feed and mail.
fn public_url(s: &str) -> Result<Url, String> {
    let url = absolute_url(s)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a user name or password in a URL readers see".into());
    }
    Ok(url)
}

fn read_site(t: Option<TableReader<'_, '_>>, diags: &mut Vec<Diagnostic>) -> Site {
    let mut site = Site {
        title: "Newsroom".into(),
        base_url: Url::parse("http://127.0.0.1:8080/").expect("a valid literal URL"),
        lang: LangTag::parse("en").expect("a valid literal tag"),
        timezone: Tz::UTC,
        publish_time: NaiveTime::MIN,
        author: String::new(),
        feed_items: 50,
        contacts: Vec::new(),
    };
    let Some(mut t) = t else {
        return site;
    };
    if let Some((title, _)) = t.string("title", diags) {
        site.title = title;
    }
    if let Some(mut u) = public(&mut t, "base_url", diags) {
        if !u.path().ends_with('/') {
            let path = format!("{}/", u.path());
            u.set_path(&path);
        }
        site.base_url = u;
    }
    let lang = t.string("lang", diags);
    if let Some(lang) = parse_or(
        &t,
        lang,
        LangTag::parse,
        "a BCP 47 language tag like sv or en-GB",
        diags,
    ) {
        site.lang = lang;
    }
    let tz = t.string("timezone", diags);
    if let Some(tz) = parse_or(
        &t,
        tz,
        Tz::from_str,
        "an IANA time zone like Europe/Stockholm",
        diags,
    ) {
        site.timezone = tz;
    }
    let time = t.string("publish_time", diags);
    let parse_time = |s: &str| {
        NaiveTime::parse_from_str(s, "%H:%M").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
    };
    if let Some(time) = parse_or(&t, time, parse_time, "a time of day like 08:00", diags) {
        site.publish_time = time;
    }
    let author = t
        .string("author", diags)
        .or_else(|| t.string("organisation", diags));
    if let Some((author, _)) = author {
        site.author = author;
    }
    if let Some((n, span)) = t.integer("feed_items", diags) {
        match usize::try_from(n) {
            Ok(n) if (1..=1000).contains(&n) => site.feed_items = n,
            _ => diags.push(
                t.error(span, format!("feed_items = {n} is out of range"))
                    .expected("1 to 1000"),
            ),
        }
    }
    site.contacts = crate::contact::read(&mut t, diags);
    t.finish(diags);
    site
}

fn read_topics(t: Option<TableReader<'_, '_>>, diags: &mut Vec<Diagnostic>) -> Topics {
    let mut entries: Vec<TopicEntry> = Vec::new();
    let Some(t) = t else {
        return Topics::default();
    };
    for ((name, span), mut entry) in t.named_tables(diags) {
        let description = entry.string("description", diags).and_then(|(d, at)| {
            match d
                .chars()
                .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
            {
                Some(c) => {
                    diags.push(
                        entry
                            .error(
                                at,
                                format!(
                                    "the description holds the control character U+{:04X}",
                                    c as u32
                                ),
                            )
                            .expected("text without control characters"),
                    );
                    None
                }
                None => Some(d.trim().to_string()).filter(|d| !d.is_empty()),
            }
        });
        let src = entry.source();
        entry.finish(diags);
        let topic = match Topic::parse(&name) {
            Ok(topic) => topic,
            Err(e) => {
                diags.push(src.error(span, e).expected(crate::topic::EXPECTED));
                continue;
            }
        };
        if let Some(seen) = entries.iter().find(|e| e.topic == topic) {
            diags.push(
                src.error(
                    span,
                    format!(
                        "`{}` and `{}` are one topic, `{}`: it is named twice",
                        seen.topic.name(),
                        topic.name(),
                        topic.slug()
                    ),
                )
                .expected("each topic once in [topics]"),
            );
            continue;
        }
        let (line, col) = src.position(span.start);
        entries.push(TopicEntry {
            topic: topic.written_at(line, col),
            description,
        });
    }
    Topics(entries)
}

fn read_paths(t: Option<TableReader<'_, '_>>, root: &Path, diags: &mut Vec<Diagnostic>) -> Paths {
    let mut get = |t: &mut Option<TableReader<'_, '_>>, key: &'static str, default: &str| {
        let value = t.as_mut().and_then(|t| t.string(key, diags));
        root.join(value.map_or_else(|| default.to_string(), |(v, _)| v))
    };
    let mut t = t;
    let paths = Paths {
        releases: get(&mut t, "releases", "releases"),
        public: get(&mut t, "public", "public"),
        state: get(&mut t, "state", "state"),
        media: get(&mut t, "media", "config/media.csv"),
        templates: get(&mut t, "templates", "config/templates"),
    };
    if let Some(t) = t {
        t.finish(diags);
    }
    paths
}

fn read_http(t: Option<TableReader<'_, '_>>, diags: &mut Vec<Diagnostic>) -> Http {
    let mut http = Http {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        admin_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
        trusted_proxies: Vec::new(),
    };
    if let Some(mut t) = t {
        for (key, slot) in [
            ("listen", &mut http.listen),
            ("admin_listen", &mut http.admin_listen),
        ] {
            let value = t.string(key, diags);
            if let Some(addr) = parse_or(
                &t,
                value,
                SocketAddr::from_str,
                "an address and port like 127.0.0.1:8080",
                diags,
            ) {
                *slot = addr;
            }
        }
        for item in t.string_list("trusted_proxies", diags).unwrap_or_default() {
            if let Some(net) = parse_or(
                &t,
                Some(item),
                proxy_network,
                "an IP address or a CIDR network like 10.0.0.0/8",
                diags,
            ) {
                http.trusted_proxies.push(net);
            }
        }
        t.finish(diags);
    }
    http
}

/// One entry of `trusted_proxies`: a network (`10.0.0.0/8`, `fd00::/8`) or one address,
/// which is a network of one. Host bits under the prefix are refused: `10.0.0.1/8` is
/// more likely a typo than a wish to trust all of 10/8.
fn proxy_network(text: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(addr) = text.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(addr));
    }
    let net: ipnet::IpNet = text
        .parse()
        .map_err(|_| "not an IP address or a CIDR network".to_string())?;
    if net.trunc() != net {
        return Err(format!(
            "has bits set below its prefix (the network is {})",
            net.trunc()
        ));
    }
    Ok(net)
}

fn read_mail(
    t: Option<TableReader<'_, '_>>,
    root: &Path,
    paths: &Paths,
    diags: &mut Vec<Diagnostic>,
) -> Mail {
    let mut mail = Mail {
        from: Mailbox::from_str("Newsroom <newsroom@example.org>")
            .expect("a valid literal mailbox"),
        reply_to: None,
        subject_prefix: String::new(),
        transport: Transport::File {
            outbox: paths.state.join("outbox"),
        },
        rate: 20.0,
        concurrency: 4,
        timeout: Duration::from_secs(60),
        dkim: None,
    };
    let Some(mut t) = t else {
        return mail;
    };
    let mailbox_expected = "an address like Press <press@example.org>";
    let from = t.string("from", diags);
    if let Some(from) = parse_or(&t, from, Mailbox::from_str, mailbox_expected, diags) {
        mail.from = from;
    }
    let reply_to = t.string("reply_to", diags);
    mail.reply_to = parse_or(&t, reply_to, Mailbox::from_str, mailbox_expected, diags);
    if let Some((prefix, span)) = t.string("subject_prefix", diags) {
        if prefix.chars().any(char::is_control) {
            diags.push(
                t.error(span, "subject_prefix contains a control character")
                    .expected("one line of text"),
            );
        } else {
            mail.subject_prefix = prefix;
        }
    }
    let outbox = t.string("outbox", diags).map(|(p, _)| root.join(p));
    let smtp_url = t.string("url", diags);
    let user = t.string("user", diags).map(|(u, _)| u);
    let password = read_secret(&mut t, diags);
    let tls_ca = t.string("tls_ca", diags).map(|(p, span)| FileRef {
        path: root.join(p),
        written_at: t.source().location(span.start),
    });
    match t.string("transport", diags) {
        None => {}
        Some((kind, _)) if kind == "file" => {}
        Some((kind, span)) if kind == "smtp" => {
            let expected = "smtps://host:465, smtp://host:587?tls=required (STARTTLS; or tls=opportunistic), or smtp://localhost:25";
            let url = match &smtp_url {
                Some(_) => parse_or(&t, smtp_url.clone(), smtp_url_of, expected, diags),
                None => {
                    diags.push(
                        t.error(span.clone(), "transport = \"smtp\" needs a `url`")
                            .expected(expected),
                    );
                    None
                }
            };
            if let Some((url, tls)) = url {
                let clear = tls == Tls::None;
                if clear && user.is_some() {
                    diags.push(
                        t.error(
                            span,
                            "a password would cross the network in clear: plain smtp:// has no TLS",
                        )
                        .expected("smtps://host:465, or smtp://host:587?tls=required (STARTTLS)"),
                    );
                }
                if let (true, Some(ca)) = (clear, &tls_ca) {
                    diags.push(
                        ca.written_at
                            .error("tls_ca is not used: plain smtp:// has no TLS")
                            .expected("smtps:// or tls=required")
                            .warning(),
                    );
                }
                mail.transport = Transport::Smtp {
                    url,
                    tls,
                    user,
                    password,
                    tls_ca,
                };
            }
        }
        Some((kind, span)) => {
            diags.push(
                t.error(span, format!("unknown transport `{kind}`"))
                    .expected("\"file\" or \"smtp\""),
            );
        }
    }
    if let (Transport::File { outbox: o }, Some(outbox)) = (&mut mail.transport, outbox) {
        *o = outbox;
    }
    if let Some(raw) = t.raw("rate") {
        let rate = raw
            .get_ref()
            .as_float()
            .and_then(|f| f.as_str().parse::<f64>().ok())
            .or_else(|| {
                raw.get_ref()
                    .as_integer()
                    .and_then(|i| i.as_str().parse::<f64>().ok())
            });
        match rate {
            Some(r) if r > 0.0 && r.is_finite() => mail.rate = r,
            _ => diags.push(
                t.error(raw.span(), "`rate` must be a positive number")
                    .expected("messages per second, like 20"),
            ),
        }
    }
    if let Some((n, span)) = t.integer("concurrency", diags) {
        match usize::try_from(n) {
            Ok(n) if (1..=256).contains(&n) => mail.concurrency = n,
            _ => diags.push(
                t.error(span, format!("concurrency = {n} is out of range"))
                    .expected("1 to 256 connections"),
            ),
        }
    }
    let timeout = t.string("timeout", diags);
    let timeout_span = timeout.as_ref().map(|(_, span)| span.clone());
    if let Some(d) = parse_or(
        &t,
        timeout,
        humantime::parse_duration,
        "a duration like 60s or 2min",
        diags,
    ) {
        if (Duration::from_secs(1)..=Duration::from_secs(600)).contains(&d) {
            mail.timeout = d;
        } else if let Some(span) = timeout_span {
            diags.push(
                t.error(span, "`timeout` is out of range")
                    .expected("1s to 10min"),
            );
        }
    }
    let key = t.string("dkim_key", diags);
    let selector = t.string("dkim_selector", diags);
    match (key, selector) {
        (Some((key, span)), Some((selector, selector_span))) => {
            // The selector becomes a DNS label and the `s=` tag.
            let label = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if selector.split('.').all(label) {
                mail.dkim = Some(Dkim {
                    key: FileRef {
                        path: root.join(key),
                        written_at: t.source().location(span.start),
                    },
                    selector,
                });
            } else {
                diags.push(
                    t.error(
                        selector_span,
                        format!("`{selector}` is not a DKIM selector"),
                    )
                    .expected("DNS labels of letters, digits, `-` and `_`, like press2026"),
                );
            }
        }
        (Some((_, span)), None) | (None, Some((_, span))) => diags.push(
            t.error(span, "DKIM needs both `dkim_key` and `dkim_selector`")
                .expected("both keys, or neither"),
        ),
        (None, None) => {}
    }
    t.finish(diags);
    mail
}

fn smtp_url_of(s: &str) -> Result<(Url, Tls), String> {
    let url = Url::parse(s).map_err(|e| e.to_string())?;
    match url.scheme() {
        "smtp" | "smtps" if url.host_str().is_some() => {
            if url.password().is_some() {
                return Err("a password in the URL would sit in the config".into());
            }
            let tls = Tls::of(&url)?;
            Ok((url, tls))
        }
        _ => Err("not an smtp:// or smtps:// URL".into()),
    }
}

fn read_secret(t: &mut TableReader<'_, '_>, diags: &mut Vec<Diagnostic>) -> Option<Secret> {
    if let Some(raw) = t.raw("password") {
        diags.push(
            t.error(raw.span(), "a password never sits in the config file")
                .expected("password_file, password_env or password_credential"),
        );
    }
    let file = t
        .string("password_file", diags)
        .map(|(p, _)| Secret::File(PathBuf::from(p)));
    let env = t.string("password_env", diags).map(|(v, _)| Secret::Env(v));
    let cred = t
        .string("password_credential", diags)
        .map(|(c, _)| Secret::Credential(c));
    file.or(env).or(cred)
}

fn read_dispatch(t: Option<TableReader<'_, '_>>, diags: &mut Vec<Diagnostic>) -> Dispatch {
    let mut dispatch = Dispatch {
        window: cron::Schedule::from_str(DEFAULT_WINDOW).expect("the default window parses"),
        catch_up: Duration::from_secs(24 * 3600),
        max_retry_age: Duration::from_secs(72 * 3600),
        hold: Duration::from_secs(120),
    };
    let Some(mut t) = t else {
        return dispatch;
    };
    let window = t.string("window", diags);
    let expected =
        "a cron expression: sec min hour day month weekday, like \"* * 7-17 * * Mon-Fri\"";
    if let Some(window) = parse_or(&t, window, cron::Schedule::from_str, expected, diags) {
        dispatch.window = window;
    }
    let duration_expected = "a duration like 24h, 90min or 3days";
    for (key, slot) in [
        ("catch_up", &mut dispatch.catch_up),
        ("max_retry_age", &mut dispatch.max_retry_age),
        ("hold", &mut dispatch.hold),
    ] {
        let value = t.string(key, diags);
        if let Some(d) = parse_or(
            &t,
            value,
            humantime::parse_duration,
            duration_expected,
            diags,
        ) {
            *slot = d;
        }
    }
    t.finish(diags);
    dispatch
}

fn read_watch(t: Option<TableReader<'_, '_>>, diags: &mut Vec<Diagnostic>) -> Watch {
    let mut watch = Watch {
        rescan: Rescan::Auto,
    };
    let Some(mut t) = t else {
        return watch;
    };
    let value = t.string("rescan", diags);
    let parse = |s: &str| match s {
        "auto" => Ok(Rescan::Auto),
        "off" => Ok(Rescan::Off),
        _ => match humantime::parse_duration(s) {
            // A rescan costs a scan of every release: more often than a second is a loop.
            Ok(d) if d >= Duration::from_secs(1) => Ok(Rescan::Every(d)),
            Ok(_) => Err("shorter than a second".to_string()),
            Err(e) => Err(e.to_string()),
        },
    };
    let expected = "\"auto\", \"off\" or a duration of a second or more, like \"30s\"";
    if let Some(rescan) = parse_or(&t, value, parse, expected, diags) {
        watch.rescan = rescan;
    }
    t.finish(diags);
    watch
}

fn read_subscribe(t: Option<TableReader<'_, '_>>, diags: &mut Vec<Diagnostic>) -> Subscribe {
    let mut subscribe = Subscribe::default();
    let Some(mut t) = t else {
        return subscribe;
    };
    if let Some((open, _)) = t.bool("open", diags) {
        subscribe.open = open;
    }
    let digest = t.string("digest", diags);
    let expected = "a cron expression: sec min hour day month weekday, like \"0 0 7 * * *\"";
    if let Some(digest) = parse_or(&t, digest, cron::Schedule::from_str, expected, diags) {
        subscribe.digest = digest;
    }
    let within = t.string("confirm_within", diags);
    if let Some(within) = parse_or(
        &t,
        within,
        humantime::parse_duration,
        "a duration like 48h or 2days",
        diags,
    ) {
        subscribe.confirm_within = within;
    }
    let mailbox = t.string("unsubscribe_mailbox", diags);
    subscribe.unsubscribe_mailbox = parse_or(
        &t,
        mailbox,
        // It goes into a mail header as it is (a `mailto:` URL): ASCII only.
        |s: &str| match lettre::Address::from_str(s) {
            Ok(a) if s.is_ascii() => Ok(a),
            Ok(_) => Err("not ASCII".to_string()),
            Err(e) => Err(e.to_string()),
        },
        "an ASCII address alone, like unsubscribe@example.org",
        diags,
    );
    t.finish(diags);
    subscribe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offices_press_contacts_are_read_like_a_releases_and_a_bad_address_is_refused() {
        let contact = "[[site.contacts]]\nname = \"Simon Falk\"\nrole = \"Pressansvarig\"\nphone = \"070-784 74 97\"\nemail = \"press@example.org\"\n\n[[site.contacts]]\nname = \"Växeln\"\n";
        let c = parse(contact).expect("valid").site.contacts;
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].name, "Simon Falk");
        assert_eq!(c[0].role.as_deref(), Some("Pressansvarig"));
        assert_eq!(c[0].phone.as_deref(), Some("070-784 74 97"));
        assert_eq!(c[0].email.as_deref(), Some("press@example.org"));
        assert_eq!(
            (c[1].name.as_str(), c[1].email.as_deref()),
            ("Växeln", None)
        );
        let errors = parse(&format!("{contact}email = \"inte en adress\"\n")).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("inte en adress")),
            "{errors:?}"
        );
        assert!(parse("").expect("valid").site.contacts.is_empty());
    }

    #[test]
    fn topics_keep_the_tables_order_and_refuse_two_names_for_one_topic() {
        let text = "[topics.\"Människohandel\"]\ndescription = \" Om människohandel. \"\n\n[topics.Prostitution]\n\n[topics.jamstalldhet]\n";
        let (config, _) =
            Config::parse(text, Path::new("c.toml"), Path::new("/srv")).expect("valid");
        let names: Vec<&str> = config.topics.iter().map(|e| e.topic.name()).collect();
        assert_eq!(names, ["Människohandel", "Prostitution", "jamstalldhet"]);
        let miljo = Topic::parse("manniskohandel").unwrap();
        assert_eq!(config.topics.name(&miljo), "Människohandel");
        assert_eq!(config.topics.rank(&miljo), 0);
        assert_eq!(
            config
                .topics
                .get(&miljo)
                .and_then(|e| e.description.as_deref()),
            Some("Om människohandel.")
        );
        let other = Topic::parse("Sport").unwrap();
        assert_eq!(
            (config.topics.name(&other), config.topics.rank(&other)),
            ("Sport", 3)
        );

        let text = "[topics.\"Miljö\"]\n[topics.miljo]\n[topics.\"?\"]\n[topics.Sport]\ndescriptio = \"x\"\n";
        let diags: Vec<String> = Config::parse(text, Path::new("c.toml"), Path::new("/srv"))
            .expect_err("invalid")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(diags.len(), 3, "{diags:?}");
        assert!(
            diags
                .iter()
                .any(|d| d.starts_with("c.toml:2:9: `Miljö` and `miljo` are one topic, `miljo`")),
            "{diags:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.starts_with("c.toml:3:9: the topic name `?` has no letter or digit")),
            "{diags:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.starts_with("c.toml:5:1: unknown key `descriptio`")),
            "{diags:?}"
        );
    }

    fn parse(text: &str) -> Result<Config, Vec<String>> {
        Config::parse(
            text,
            Path::new("config/pressroom.toml"),
            Path::new("/srv/press"),
        )
        .map(|(c, _)| c)
        .map_err(|d| d.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn the_smtp_timeout_is_a_bounded_duration() {
        let mail = |line: &str| {
            parse(&format!(
                "[site]\ntitle = \"T\"\nbase_url = \"https://example.org/\"\n[mail]\n{line}\n"
            ))
        };
        assert_eq!(
            mail("timeout = \"5s\"").expect("valid").mail.timeout,
            Duration::from_secs(5)
        );
        assert_eq!(
            mail("").expect("valid").mail.timeout,
            Duration::from_secs(60)
        );
        for bad in [
            "timeout = \"0s\"",
            "timeout = \"1h\"",
            "timeout = \"soon\"",
            "timeout = 5",
        ] {
            assert!(mail(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks_and_a_typo_is_named() {
        let http = |text: &str| parse(&format!("[http]\n{text}\n"));
        assert!(parse("").expect("valid").http.trusted_proxies.is_empty());
        let c =
            http("trusted_proxies = [\"127.0.0.2\", \"10.0.0.0/8\", \"fd00::/8\"]").expect("valid");
        let trusted = |ip: &str| {
            let ip: std::net::IpAddr = ip.parse().expect("ip");
            c.http.trusted_proxies.iter().any(|n| n.contains(&ip))
        };
        assert!(trusted("127.0.0.2") && trusted("10.9.8.7") && trusted("fd12::1"));
        assert!(!trusted("127.0.0.1") && !trusted("192.0.2.1"));
        for (bad, says) in [
            ("trusted_proxies = [\"10.0.0.1/8\"]", "below its prefix"),
            ("trusted_proxies = [\"proxy.example.org\"]", "CIDR network"),
            ("trusted_proxies = [10]", "an item of `trusted_proxies`"),
            (
                "trusted_proxy = [\"10.0.0.1\"]",
                "did you mean `trusted_proxies`",
            ),
        ] {
            let errors = http(bad).expect_err(bad);
            assert!(
                errors.iter().any(|e| e.contains(says)),
                "{bad}: {errors:#?}"
            );
        }
    }

    #[test]
    fn subscribe_opens_the_form_with_a_daily_digest_at_seven_by_default() {
        let c = parse("").unwrap().subscribe;
        assert!(c.open);
        assert_eq!(c.confirm_within, Duration::from_secs(48 * 3600));
        assert_eq!(c.digest.to_string(), DEFAULT_DIGEST);
        let c = parse(
            "[subscribe]\nopen = false\ndigest = \"0 30 8 * * Mon-Fri\"\nconfirm_within = \"2h\"\n",
        )
        .unwrap()
        .subscribe;
        assert!(!c.open);
        assert_eq!(c.confirm_within, Duration::from_secs(7200));
        assert_eq!(c.digest.to_string(), "0 30 8 * * Mon-Fri");
        let errors = parse("[subscribe]\ndigest = \"every morning\"\n").unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("cron expression")),
            "{errors:?}"
        );
    }

    #[test]
    fn the_unsubscribe_mailbox_is_an_ascii_address_alone_or_none() {
        assert_eq!(parse("").unwrap().subscribe.unsubscribe_mailbox, None);
        let mailbox = |v: &str| {
            parse(&format!("[subscribe]\nunsubscribe_mailbox = {v}\n"))
                .map(|c| c.subscribe.unsubscribe_mailbox.map(|a| a.to_string()))
        };
        assert_eq!(
            mailbox("\"unsubscribe@example.org\""),
            Ok(Some("unsubscribe@example.org".into()))
        );
        for bad in [
            "\"Unsubscribe <unsubscribe@example.org>\"",
            "\"avregistrera@exempel.se\u{e5}\"",
            "\"nobody\"",
            "1",
        ] {
            assert!(mailbox(bad).is_err(), "{bad}");
        }
        let errors = parse("[subscribe]\nunsubscribe_mailbx = \"u@example.org\"\n").unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("did you mean `unsubscribe_mailbox`")),
            "{errors:?}"
        );
    }

    #[test]
    fn watch_rescan_is_auto_off_or_a_duration() {
        assert_eq!(parse("").unwrap().watch.rescan, Rescan::Auto);
        let rescan = |v: &str| parse(&format!("[watch]\nrescan = {v}\n")).map(|c| c.watch.rescan);
        assert_eq!(rescan("\"auto\""), Ok(Rescan::Auto));
        assert_eq!(rescan("\"off\""), Ok(Rescan::Off));
        assert_eq!(
            rescan("\"2min\""),
            Ok(Rescan::Every(Duration::from_secs(120)))
        );
        assert_eq!(Rescan::Auto.interval(), Some(Duration::from_secs(30)));
        for bad in ["\"0s\"", "\"100ms\"", "\"sometimes\"", "30"] {
            assert!(rescan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_config_is_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.site.feed_items, 50);
        assert_eq!(c.paths.releases, Path::new("/srv/press/releases"));
        assert!(matches!(c.mail.transport, Transport::File { .. }));
    }

    #[test]
    fn values_become_types() {
        let c = parse(
            "[site]\nbase_url = \"https://press.example.org/news\"\ntimezone = \"Europe/Stockholm\"\npublish_time = \"08:30\"\n\
             [dispatch]\nwindow = \"* * 7-17 * * Mon-Fri\"\ncatch_up = \"12h\"\n",
        )
        .unwrap();
        assert_eq!(c.site.base_url.as_str(), "https://press.example.org/news/");
        assert_eq!(c.site.timezone, chrono_tz::Europe::Stockholm);
        assert_eq!(
            c.site.publish_time,
            NaiveTime::from_hms_opt(8, 30, 0).unwrap()
        );
        assert_eq!(c.dispatch.catch_up, Duration::from_secs(12 * 3600));
        assert_eq!(
            c.dispatch.hold,
            Duration::from_secs(120),
            "the default hold"
        );
        let c = parse("[dispatch]\nhold = \"0s\"\n").unwrap();
        assert_eq!(c.dispatch.hold, Duration::ZERO);
        assert!(parse("[dispatch]\nhold = \"soon\"\n").is_err());
    }

    #[test]
    fn the_smtp_url_names_its_tls_mode_once_and_only_known_ones() {
        let smtp = |url: &str| {
            parse(&format!("[mail]\ntransport = \"smtp\"\nurl = \"{url}\"\n")).map(|c| {
                match c.mail.transport {
                    Transport::Smtp { tls, .. } => tls,
                    Transport::File { .. } => unreachable!("transport = smtp"),
                }
            })
        };
        assert_eq!(smtp("smtps://relay.example.org"), Ok(Tls::Implicit));
        assert_eq!(
            smtp("smtp://relay.example.org:587?tls=required"),
            Ok(Tls::Required)
        );
        assert_eq!(
            smtp("smtp://relay.example.org:587?tls=opportunistic"),
            Ok(Tls::Opportunistic)
        );
        assert_eq!(smtp("smtp://localhost:25"), Ok(Tls::None));
        for bad in [
            "smtp://relay.example.org?tls=bogus",
            "smtps://relay.example.org?tls=",
        ] {
            let errors = smtp(bad).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains("unknown TLS mode tls=")),
                "{bad}: {errors:#?}"
            );
        }
    }

    #[test]
    fn every_bad_value_is_reported_with_its_line() {
        let errors = parse(
            "[site]\ntimezone = \"Europe/Stokholm\"\nbase_ur = \"x\"\n[mail]\npassword = \"hunter2\"\n[dispatch]\nwindow = \"every day\"\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(
            errors[0].starts_with("config/pressroom.toml:2:12: `Europe/Stokholm`"),
            "{}",
            errors[0]
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("unknown key `base_ur` in [site] (did you mean `base_url`?)"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("5:12: a password never sits in the config file"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("config/pressroom.toml:7:10: `every day`"))
        );
    }
}
