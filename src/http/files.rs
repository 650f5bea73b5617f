//! Serving the built site from `public/`: a request path is resolved by a pure function
//! that refuses anything that could leave the folder or reach a file we did not publish
//! (`..`, encoded slashes, NUL, hidden files such as the manifest); files are served with
//! their content type, a validator pair (`ETag`, `Last-Modified`) answered with 304 when the
//! client already has them, `Cache-Control`, and on feeds `Link` headers naming the feed
//! itself and its WebSub hubs. Folders serve their `index.html`; there are no listings.
//! A page or feed goes gzipped to a client that takes gzip, from a copy made once per
//! version of the file (`gzip`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use headers::{
    AcceptRanges, ContentRange, ETag, HeaderMapExt, IfModifiedSince, IfNoneMatch, IfRange,
    LastModified,
};
use std::io::{Read, Seek, SeekFrom};
use std::ops::Bound;

/// A request path that may be served: a path relative to the site folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub relative: PathBuf,
    /// The path ended in `/`: a folder is asked for.
    pub folder: bool,
}

/// Turns the path of a request URI (still percent-encoded) into a path inside the site, or
/// refuses it. Pure, so it is unit-tested and fuzzed.
pub fn resolve(uri_path: &str) -> Option<Resolved> {
    let rest = uri_path.strip_prefix('/')?;
    let folder = rest.is_empty() || rest.ends_with('/');
    let mut relative = PathBuf::new();
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.into_iter().enumerate() {
        if segment.is_empty() {
            // Only the end may be empty (`/`, `/topics/`); `//` is not a path we write.
            if i == last {
                continue;
            }
            return None;
        }
        let decoded = percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .ok()?;
        // A segment names one file or folder: no separators once decoded (`%2f`), no
        // parent or self references, nothing hidden (`.pressroom-manifest`, temp files),
        // no NUL or other control characters.
        if decoded.starts_with('.')
            || decoded.contains(['/', '\\'])
            || decoded.chars().any(char::is_control)
        {
            return None;
        }
        relative.push(decoded.as_ref());
    }
    Some(Resolved { relative, folder })
}

/// The content type of a file we serve. Feeds get their registered types, all text is
/// UTF-8.
pub fn content_type(path: &Path) -> HeaderValue {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let value = match (name, ext) {
        (_, "rss") => "application/rss+xml; charset=utf-8",
        (_, "atom") => "application/atom+xml; charset=utf-8",
        ("feed.json", _) => "application/feed+json; charset=utf-8",
        (_, "html") => "text/html; charset=utf-8",
        (_, "xml") => "application/xml; charset=utf-8",
        (_, "json") => "application/json; charset=utf-8",
        (_, "txt") => "text/plain; charset=utf-8",
        (_, "css") => "text/css; charset=utf-8",
        _ => {
            let guessed = mime_guess::from_path(path).first_or_octet_stream();
            return HeaderValue::from_str(guessed.essence_str())
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        }
    };
    HeaderValue::from_static(value)
}

/// Pages and feeds are revalidated on every use (a 304 costs nothing, and a reader must
/// see a release the minute it lifts); attachments never change under the same name
/// within a release, so caches may keep them for an hour.
fn cache_control(path: &Path) -> HeaderValue {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "rss" | "atom" | "json" | "xml") => HeaderValue::from_static("no-cache"),
        _ => HeaderValue::from_static("public, max-age=3600"),
    }
}

/// What a feed's `Link` header needs.
pub struct Links<'a> {
    pub base_url: &'a url::Url,
    pub hubs: &'a [url::Url],
}

/// Files up to this size are read whole; bigger ones (attachments) are streamed.
const READ_WHOLE: u64 = 1 << 20;

// The site's pages and feeds are small files this process has just written, read from
// the page cache in microseconds: they are looked up, opened and read on the worker
// thread itself. Through tokio::fs each of those steps was a trip to the blocking pool,
// which grew by a thread per concurrent request; the threads' memory stayed resident
// after they ended. Only a large attachment is streamed through the pool.

/// Files smaller than this are sent as they are: gzip's header and trailer are 18 bytes.
const MIN_GZIP: u64 = 32;

/// Answers a GET or HEAD for `uri_path` from the site in `root`. A page or feed asked for
/// whole by a client that accepts gzip is answered from `gzipped`, the copy made once per
/// version of the file.
pub fn serve(
    root: &Path,
    method: &Method,
    uri_path: &str,
    request: &HeaderMap,
    links: Links<'_>,
    gzipped: &super::gzip::Cache,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "only GET and HEAD\n",
        )
            .into_response();
    }
    let Some(resolved) = resolve(uri_path) else {
        return not_found(root);
    };
    let mut path = root.join(&resolved.relative);
    // Never follow a symlink below the root (the root itself may be one, as systemd's
    // StateDirectory makes it): the site holds only files and folders we wrote.
    if crosses_a_link(root, &resolved.relative) {
        return not_found(root);
    }
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return not_found(root);
    };
    if meta.is_dir() {
        if !resolved.folder {
            // `/releases/du-avgor` → `/releases/du-avgor/`, so relative links work.
            let location = format!("{}/", uri_path);
            return (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
        if let Some(location) = moved(&path) {
            return (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
        path.push("index.html");
    } else if resolved.folder || !meta.is_file() {
        return not_found(root);
    }
    let Ok(mut file) = std::fs::File::open(&path) else {
        return not_found(root);
    };
    // The metadata of the opened file: the one whose bytes we send, even if the build
    // renames a new one into place meanwhile.
    let Ok(meta) = file.metadata() else {
        return not_found(root);
    };
    if !meta.is_file() {
        return not_found(root);
    }
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let etag = etag_of(&meta);

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type(&path));
    // The compression layer varies GET responses by encoding; HEAD and 304 say the same.
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::CACHE_CONTROL, cache_control(&path));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(etag) = &etag {
        headers.typed_insert(etag.clone());
    }
    headers.typed_insert(LastModified::from(modified));
    if crate::output::is_feed(uri_path)
        && let Some(value) = link_header(uri_path, &links)
    {
        headers.insert(header::LINK, value);
    }

    headers.typed_insert(AcceptRanges::bytes());
    if not_modified(request, etag.as_ref(), modified) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let len = meta.len();
    let (status, span) = match wanted(request, etag.as_ref(), modified, len) {
        Wanted::Whole => (StatusCode::OK, 0..len),
        Wanted::Part(span) => {
            match ContentRange::bytes(span.clone(), len) {
                Ok(range) => headers.typed_insert(range),
                Err(_) => return not_found(root),
            }
            (StatusCode::PARTIAL_CONTENT, span)
        }
        Wanted::Unsatisfiable => {
            headers.typed_insert(ContentRange::unsatisfied_bytes(len));
            return (StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response();
        }
    };
    if status == StatusCode::OK
        && (MIN_GZIP..=READ_WHOLE).contains(&len)
        && super::gzip::compressible(&path)
        && super::gzip::accepted(request)
    {
        let read = || {
            let mut bytes = Vec::with_capacity(len as usize);
            file.by_ref().take(len).read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        let Ok(copy) = gzipped.get_or_make(&path, super::gzip::Stamp::of(&meta), read) else {
            return not_found(root);
        };
        // As the compression layer says of what it compresses: a range of the gzipped
        // bytes is not offered (a range request gets the file's own bytes).
        headers.remove(header::ACCEPT_RANGES);
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(copy.len()));
        if method == Method::HEAD {
            return (status, headers).into_response();
        }
        return (status, headers, Body::from(copy)).into_response();
    }
    let count = span.end - span.start;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if method == Method::HEAD {
        return (status, headers).into_response();
    }
    if span.start > 0 && file.seek(SeekFrom::Start(span.start)).is_err() {
        return not_found(root);
    }
    let body = if count <= READ_WHOLE {
        let mut bytes = Vec::with_capacity(count as usize);
        if file.take(count).read_to_end(&mut bytes).is_err() {
            return not_found(root);
        }
        Body::from(bytes)
    } else {
        use tokio::io::AsyncReadExt;
        let file = tokio::fs::File::from_std(file).take(count);
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
    };
    (status, headers, body).into_response()
}

/// What part of a file a GET asks for.
enum Wanted {
    Whole,
    /// One range, as a span of bytes.
    Part(std::ops::Range<u64>),
    Unsatisfiable,
}

/// One byte range (a resumed download), unless `If-Range` says the file changed since the
/// client's part was sent; several ranges at once are answered with the whole file, as RFC
/// 9110 §14.2 lets a server do (one request cannot make many reads).
fn wanted(request: &HeaderMap, etag: Option<&ETag>, modified: SystemTime, len: u64) -> Wanted {
    let Some(range) = request.typed_get::<headers::Range>() else {
        return Wanted::Whole;
    };
    if let Some(if_range) = request.typed_get::<IfRange>()
        && if_range.is_modified(etag, Some(&LastModified::from(modified)))
    {
        return Wanted::Whole;
    }
    let spans: Vec<_> = range.satisfiable_ranges(len).take(2).collect();
    let [(start, end)] = spans.as_slice() else {
        return if spans.is_empty() {
            Wanted::Unsatisfiable
        } else {
            Wanted::Whole
        };
    };
    let start = match start {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match end {
        Bound::Included(e) => e + 1,
        Bound::Excluded(e) => *e,
        Bound::Unbounded => len,
    }
    .min(len);
    if start >= end {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(start..end)
}

/// Where the page of a release whose slug changed is now, if `folder` is its old page
/// folder: the build left the new page's URL in `.moved` there, and no page.
fn moved(folder: &Path) -> Option<HeaderValue> {
    if std::fs::symlink_metadata(folder.join("index.html")).is_ok() {
        return None;
    }
    let mut file = std::fs::File::open(folder.join(crate::output::MOVED)).ok()?;
    let mut text = String::new();
    file.by_ref().take(4096).read_to_string(&mut text).ok()?;
    let url = url::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    HeaderValue::from_str(url.as_str()).ok()
}

/// A weak validator from the file's identity: every build writes a changed file under a
/// new inode (written beside, renamed into place) and leaves unchanged files alone. Weak,
/// because the compression layer may send other bytes for the same file.
fn etag_of(meta: &std::fs::Metadata) -> Option<ETag> {
    use std::os::unix::fs::MetadataExt;
    format!(
        "W/\"{:x}-{:x}-{:x}\"",
        meta.ino(),
        meta.mtime_nsec() as u64 ^ ((meta.mtime() as u64) << 20),
        meta.len()
    )
    .parse()
    .ok()
}

/// RFC 9110 §13.2.2: If-None-Match decides when present; If-Modified-Since only without it.
fn not_modified(request: &HeaderMap, etag: Option<&ETag>, modified: SystemTime) -> bool {
    if let Some(inm) = request.typed_get::<IfNoneMatch>() {
        return etag.is_some_and(|e| !inm.precondition_passes(e));
    }
    // A date later than now is no date the client got from us: it is ignored (RFC 9110
    // §13.1.3), or a wrong client clock would pin a stale page.
    // (HTTP dates count whole seconds: a date within the current second is not later.)
    let now = SystemTime::from(crate::clock::now()) + std::time::Duration::from_secs(1);
    request
        .typed_get::<IfModifiedSince>()
        .is_some_and(|ims| ims.is_modified(now) && !ims.is_modified(modified))
}

/// Whether any folder or file on the way from `root` to `relative` is a symbolic link.
fn crosses_a_link(root: &Path, relative: &Path) -> bool {
    let mut at = root.to_path_buf();
    for part in relative.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn link_header(uri_path: &str, links: &Links<'_>) -> Option<HeaderValue> {
    let this = links.base_url.join(uri_path.trim_start_matches('/')).ok()?;
    let mut value = format!("<{this}>; rel=\"self\"");
    for hub in links.hubs {
        value.push_str(&format!(", <{hub}>; rel=\"hub\""));
    }
    HeaderValue::from_str(&value).ok()
}

/// The page the build wrote for misses (`404.html`, from the site's templates, in its
/// language, with its navigation and search box), with status 404. Static per build: it
/// echoes nothing of the request, and shows nothing a build did not publish. Before the
/// first build there is none, and a line of text says it.
pub fn not_found(root: &Path) -> Response {
    let page = root.join(NOT_FOUND);
    let html = std::fs::symlink_metadata(&page)
        .ok()
        .filter(|meta| meta.is_file() && meta.len() <= READ_WHOLE)
        .and_then(|_| std::fs::read(&page).ok());
    match html {
        Some(html) => (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            html,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found\n",
        )
            .into_response(),
    }
}

/// The build's page for misses, at the site's root.
pub const NOT_FOUND: &str = "404.html";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_resolve_inside_the_site() {
        assert_eq!(
            resolve("/"),
            Some(Resolved {
                relative: PathBuf::new(),
                folder: true
            })
        );
        assert_eq!(
            resolve("/releases/du-avgor/"),
            Some(Resolved {
                relative: "releases/du-avgor".into(),
                folder: true
            })
        );
        assert_eq!(
            resolve("/topics/j%C3%A4mst%C3%A4lldhet/feed.atom").map(|r| r.relative),
            Some("topics/jämställdhet/feed.atom".into())
        );
    }

    #[test]
    fn traversal_hidden_files_and_odd_bytes_are_refused() {
        for p in [
            "/../etc/passwd",
            "/releases/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/releases%2f..%2f..%2fetc",
            "/releases/%5c..%5cx",
            "/a%00b",
            "/.pressroom-manifest",
            "/releases/.x.tmp",
            "//etc/passwd",
            "/a//b",
            "/%ff",
            "relative",
            "/a\nb",
        ] {
            assert_eq!(resolve(p), None, "{p}");
        }
    }

    #[test]
    fn feeds_have_their_registered_types() {
        let t = |p: &str| content_type(Path::new(p)).to_str().unwrap().to_string();
        assert_eq!(t("feed.rss"), "application/rss+xml; charset=utf-8");
        assert_eq!(
            t("topics/x/feed.atom"),
            "application/atom+xml; charset=utf-8"
        );
        assert_eq!(t("feed.json"), "application/feed+json; charset=utf-8");
        assert_eq!(t("index.html"), "text/html; charset=utf-8");
        assert_eq!(t("releases/x/photo.jpg"), "image/jpeg");
    }
}
