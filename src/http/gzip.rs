//! Gzipped copies of pages and feeds, made once per version of a file rather than once per
//! request: a bounded in-memory cache keyed by the file's path and stamped with its inode,
//! modification time and size (what its ETag is made of), so a build that renames a new
//! version into place is never answered with the old one's bytes.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

/// The gzipped copies kept at most, in bytes: every feed and listing of a large site, and
/// its most read release pages (a 10 KB page is 3 KB gzipped). Past it, the least
/// recently used go.
const CAPACITY: usize = 16 << 20;

/// Which version of a file a copy was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_nsec: i64,
    len: u64,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            len: meta.len(),
        }
    }
}

struct Entry {
    stamp: Stamp,
    gzipped: Bytes,
    /// When it was last served, in lookups: the least recent goes first.
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<PathBuf, Entry>,
    bytes: usize,
    clock: u64,
}

/// The cache. A std mutex: a lookup or an insert is a map operation, never held while
/// compressing or across an await.
#[derive(Default)]
pub struct Cache(Mutex<Inner>);

impl Cache {
    /// The gzipped copy of `path` as `stamp` says it is now, made with `read` (the file's
    /// bytes) if there is none. A copy of an older version is replaced.
    pub fn get_or_make(
        &self,
        path: &Path,
        stamp: Stamp,
        read: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> std::io::Result<Bytes> {
        {
            let mut inner = self.lock();
            inner.clock += 1;
            let now = inner.clock;
            if let Some(entry) = inner.entries.get_mut(path)
                && entry.stamp == stamp
            {
                entry.used = now;
                return Ok(entry.gzipped.clone());
            }
        }
        // Two requests that miss at once both compress; the second's copy replaces the
        // first's, which is the same.
        let gzipped = Bytes::from(gzip(&read()?)?);
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        let size = gzipped.len();
        if let Some(old) = inner.entries.insert(
            path.to_path_buf(),
            Entry {
                stamp,
                gzipped: gzipped.clone(),
                used,
            },
        ) {
            inner.bytes -= old.gzipped.len();
        }
        inner.bytes += size;
        if inner.bytes > CAPACITY {
            inner.evict(CAPACITY * 3 / 4);
        }
        Ok(gzipped)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl Inner {
    /// Drops the least recently used copies until at most `target` bytes are kept: down to
    /// three quarters at once, so the scan is paid once per many inserts.
    fn evict(&mut self, target: usize) {
        let mut by_use: Vec<(u64, PathBuf)> = self
            .entries
            .iter()
            .map(|(path, e)| (e.used, path.clone()))
            .collect();
        by_use.sort_unstable();
        for (_, path) in by_use {
            if self.bytes <= target {
                break;
            }
            if let Some(e) = self.entries.remove(&path) {
                self.bytes -= e.gzipped.len();
            }
        }
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    // The level tower-http's layer used per request (6): once per version, a higher one
    // would do, but the first reader after a build waits for it.
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::default(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Whether the request accepts gzip: named with a weight above zero, or `*` when gzip is
/// not named (RFC 9110 §12.5.3).
pub fn accepted(request: &HeaderMap) -> bool {
    let mut star = None;
    for value in request.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let weight = parts
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
                })
                .map_or(1.0, |q| q.parse::<f32>().unwrap_or(0.0));
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return weight > 0.0;
            }
            if coding == "*" {
                star = Some(weight > 0.0);
            }
        }
    }
    star.unwrap_or(false)
}

/// Files we write as text, which gzip shrinks: pages, feeds, the sitemap, styles.
pub fn compressible(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("html" | "rss" | "atom" | "json" | "xml" | "txt" | "css" | "js" | "svg")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accepts(value: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("value"),
        );
        accepted(&h)
    }

    #[test]
    fn gzip_is_accepted_when_named_with_a_weight_or_by_a_star() {
        assert!(accepts("gzip"));
        assert!(accepts("br, gzip;q=0.5, deflate"));
        assert!(accepts("*"));
        assert!(accepts("GZIP"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip; q=0.0, *"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepts("*;q=0"));
        assert!(!accepted(&HeaderMap::new()));
    }

    #[test]
    fn a_copy_is_made_once_per_version_and_the_cache_stays_bounded() {
        let cache = Cache::default();
        let meta = std::fs::metadata(env!("CARGO_MANIFEST_DIR")).expect("meta");
        let stamp = Stamp::of(&meta);
        let text = "en rad text som upprepas\n".repeat(1000).into_bytes();
        let mut reads = 0;
        for _ in 0..3 {
            let gz = cache
                .get_or_make(Path::new("feed.atom"), stamp, || {
                    reads += 1;
                    Ok(text.clone())
                })
                .expect("gzip");
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back)
                .expect("gunzip");
            assert_eq!(back, text);
        }
        assert_eq!(reads, 1, "made once");
        // A new version replaces the old copy.
        let newer = Stamp { len: 1, ..stamp };
        cache
            .get_or_make(Path::new("feed.atom"), newer, || {
                reads += 1;
                Ok(b"ny".to_vec())
            })
            .expect("gzip");
        assert_eq!(reads, 2);
        assert!(
            cache.bytes() < 100,
            "the old copy is gone: {}",
            cache.bytes()
        );
        // Incompressible copies of many files stay within the bound.
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for i in 0..200 {
            cache
                .get_or_make(
                    Path::new(&format!("p{i}.html")),
                    stamp,
                    || Ok(noise.clone()),
                )
                .expect("gzip");
            assert!(cache.bytes() <= CAPACITY, "{}", cache.bytes());
        }
    }
}
