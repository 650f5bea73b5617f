//! The press kit's pictures: their pixel size, read from the file's header alone, and a
//! web-sized version of each wide one (at most `WEB_WIDTH` pixels wide) made once at build
//! and kept in the release's folder under `_web/`, a name the releases scan ignores
//! (`release::source::is_ignored`), so no office file can take it. An image that cannot be
//! decoded, or that declares more than `MAX_PIXELS`, is offered as it is.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::diagnostic::Diagnostic;
use crate::release::{Attachment, Release};

/// The widest web version: wider than any page shows it, and what link previews ask for.
pub const WEB_WIDTH: u32 = 1200;
/// Images with more pixels are never decoded: a PNG of a hundred bytes can declare
/// 20000 × 20000 pixels, gigabytes once decoded (a decompression bomb). 50 megapixels is
/// more than any camera a press office uses.
pub const MAX_PIXELS: u64 = 50_000_000;
/// The folder of web versions inside a release's folder.
pub const WEB_DIR: &str = "_web/";
/// JPEG quality of the web versions: no visible loss at screen size.
const QUALITY: u8 = 82;

/// What the header of an image says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// As shown (after the EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// The web-sized version, when one is made.
    pub web: Option<Web>,
    /// Why none is made although the image is wide: too many pixels to decode.
    pub too_large: bool,
}

/// A web version: its name in the release's folder (`_web/bild.jpg`) and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Web {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// PNG for a PNG with transparency, JPEG for everything else.
    pub png: bool,
}

/// Whether an attachment is a picture of the press kit.
pub fn is_image(a: &Attachment) -> bool {
    a.mime.starts_with("image/")
}

/// Reads the header of the image at `path` (never its pixels). `None` when it is not a
/// JPEG or PNG the decoder understands.
pub fn probe(path: &Path, name: &str) -> Option<Probe> {
    // Only the header is read here: no limits needed, and a bomb still tells its size.
    let mut reader = ImageReader::open(path).ok()?.with_guessed_format().ok()?;
    reader.no_limits();
    let format = reader.format()?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return None;
    }
    let mut decoder = catch_unwind(AssertUnwindSafe(|| reader.into_decoder()))
        .ok()?
        .ok()?;
    let (w, h) = decoder.dimensions();
    let turned = decoder.orientation().is_ok_and(|o| {
        matches!(
            o,
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH
        )
    });
    let (width, height) = if turned { (h, w) } else { (w, h) };
    let png = format == ImageFormat::Png && decoder.color_type().has_alpha();
    let too_large = u64::from(width) * u64::from(height) > MAX_PIXELS;
    let web = (width > WEB_WIDTH && !too_large && height > 0).then(|| {
        let ext = if png { "png" } else { "jpg" };
        let lower = name.to_ascii_lowercase();
        let same = lower.ends_with(&format!(".{ext}")) || (!png && lower.ends_with(".jpeg"));
        Web {
            name: if same {
                format!("{WEB_DIR}{name}")
            } else {
                format!("{WEB_DIR}{name}.{ext}")
            },
            width: WEB_WIDTH,
            height: ((u64::from(height) * u64::from(WEB_WIDTH) + u64::from(width) / 2)
                / u64::from(width))
            .max(1) as u32,
            png,
        }
    });
    Some(Probe {
        width,
        height,
        web,
        too_large,
    })
}

/// Why a web version could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    Image(#[from] image::ImageError),
    #[error("the image decoder panicked")]
    Panicked,
}

/// Decodes the image at `path`, turns it upright and scales it to `web`'s size, encoded
/// as JPEG (or PNG when it has transparency). A decoder panic on a hostile file is an
/// error like any other.
pub fn web_version(path: &Path, web: &Web) -> Result<Vec<u8>, WebError> {
    catch_unwind(AssertUnwindSafe(|| encode(path, web))).unwrap_or(Err(WebError::Panicked))
}

fn encode(path: &Path, web: &Web) -> Result<Vec<u8>, WebError> {
    // The default limits (512 MB of allocation) stand behind the pixel budget `probe`
    // checked: a header that lies about its size fails here rather than exhausting memory.
    let reader = ImageReader::open(path)
        .map_err(image::ImageError::IoError)?
        .with_guessed_format()
        .map_err(image::ImageError::IoError)?;
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)?;
    img.apply_orientation(orientation);
    let small = img.resize_exact(web.width, web.height, FilterType::Triangle);
    let mut out = Vec::new();
    if web.png {
        small.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)?;
    } else {
        JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(&small.to_rgb8())?;
    }
    Ok(out)
}

/// One image of a release with the web version it gets.
pub struct WebImage {
    /// Its path in the site (`2018/slug/_web/bild.jpg`).
    pub path: String,
    pub original: PathBuf,
    pub web: Web,
}

/// The web versions a public release's folder holds.
pub fn web_images(release: &Release) -> Vec<WebImage> {
    release
        .files()
        .filter(|a| is_image(a))
        .filter_map(|a| {
            let web = probe(&a.path, &a.name)?.web?;
            Some(WebImage {
                path: format!("{}{}", release.path(), web.name),
                original: a.path.clone(),
                web,
            })
        })
        .collect()
}

/// `check`'s warnings about a release's pictures: one that cannot be read, or too large to
/// decode, is offered as it is, without a web-sized version.
pub fn check(release: &Release) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for a in release.files().filter(|a| is_image(a)) {
        let problem = match probe(&a.path, &a.name) {
            None => format!(
                "{} cannot be read as a JPEG or PNG picture: it is offered as it is, without its size in pixels or a web-sized version",
                a.name
            ),
            Some(p) if p.too_large => format!(
                "{} declares {} × {} pixels, more than {} megapixels: it is offered as it is, without a web-sized version",
                a.name,
                p.width,
                p.height,
                MAX_PIXELS / 1_000_000
            ),
            Some(_) => continue,
        };
        diags.push(
            Diagnostic::file(&release.source, problem)
                .expected("a JPEG or PNG picture of at most 50 megapixels")
                .warning(),
        );
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(dir: &Path, name: &str, w: u32, h: u32, alpha: bool) -> PathBuf {
        let path = dir.join(name);
        let img = if alpha {
            DynamicImage::new_rgba8(w, h)
        } else {
            DynamicImage::new_rgb8(w, h)
        };
        img.save_with_format(&path, ImageFormat::Png).unwrap();
        path
    }

    #[test]
    fn a_wide_png_with_transparency_stays_png_and_one_without_becomes_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let clear = write_png(dir.path(), "logo.png", 2400, 600, true);
        let p = probe(&clear, "logo.png").unwrap();
        assert_eq!((p.width, p.height), (2400, 600));
        let web = p.web.unwrap();
        assert_eq!(
            (web.name.as_str(), web.width, web.height, web.png),
            ("_web/logo.png", 1200, 300, true)
        );
        let bytes = web_version(&clear, &web).unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Png);

        let flat = write_png(dir.path(), "karta.png", 1600, 1000, false);
        let web = probe(&flat, "karta.png").unwrap().web.unwrap();
        assert_eq!((web.name.as_str(), web.height), ("_web/karta.png.jpg", 750));
        let bytes = web_version(&flat, &web).unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Jpeg);
        assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 1200);

        // Narrow enough already: offered as it is.
        let small = write_png(dir.path(), "ikon.png", 800, 800, false);
        assert_eq!(probe(&small, "ikon.png").unwrap().web, None);
    }
}
