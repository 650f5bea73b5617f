//! The press kit on a release page: pictures with their pixel and file size, each shown by
//! a web-sized version made once at build, and documents with their type and size. Real
//! pictures are made here with the `image` crate; a decompression bomb is written by hand.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use image::{ImageFormat, RgbImage};

use crate::{Project, files, release, text};

const PAGE: &str = "releases/rapport/index.html";
const WEB: &str = "releases/rapport/_web/bild.jpg";

/// A 3000 × 2000 photograph-like JPEG (noise over a gradient, so it weighs what a photo
/// does).
fn photo() -> Vec<u8> {
    let mut seed: u32 = 0x1234_5678;
    let img = RgbImage::from_fn(3000, 2000, |x, y| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (seed >> 24) as u8 / 4;
        image::Rgb([
            (x / 12) as u8 ^ noise,
            (y / 8) as u8 ^ noise,
            ((x + y) / 20) as u8 ^ noise,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(&img)
        .expect("encode the photo");
    out
}

/// A small PNG with transparency.
fn logo() -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(640, 480, image::Rgba([200, 20, 20, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .expect("encode the logo");
    out.into_inner()
}

/// A PNG of a few hundred bytes that declares 20000 × 20000 pixels (1.2 GB decoded).
fn bomb() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(kind);
        out.extend(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(20_000u32.to_be_bytes());
    ihdr.extend(20_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0; 1 << 20]).expect("deflate");
    chunk(&mut png, b"IDAT", &z.finish().expect("deflate"));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A release with a photo (its image), a transparent logo, a decompression bomb, a PDF and
/// a Word document.
fn press_kit() -> (Project, Vec<u8>) {
    let p = Project::empty();
    p.write(
        "releases/2020-03-01-rapport/index.md",
        release(
            "title = \"Rapport\"\ndate = 2020-03-01T09:00:00+01:00\nimage = \"bild.jpg\"\nimage_alt = \"Utredaren vid sitt skrivbord\"\nattachments = [\"logo.png\", \"bomb.png\", \"rapport.pdf\", \"remiss.docx\"]",
            "Rapporten är här.",
        ),
    );
    let photo = photo();
    p.write("releases/2020-03-01-rapport/bild.jpg", &photo);
    p.write("releases/2020-03-01-rapport/logo.png", logo());
    p.write("releases/2020-03-01-rapport/bomb.png", bomb());
    p.write(
        "releases/2020-03-01-rapport/rapport.pdf",
        b"%PDF-1.4\n".repeat(1_500),
    );
    p.write(
        "releases/2020-03-01-rapport/remiss.docx",
        vec![b'P'; 2_400_000],
    );
    (p, photo)
}

#[test]
fn the_release_page_offers_each_picture_with_its_size_and_each_document_with_its_type() {
    let (p, photo) = press_kit();
    let out = p.out();
    p.build_at("2020-03-02T00:00:00Z", &out);
    let all = files(&out);
    let page = text(&all, PAGE);
    let kit = &page[page
        .find("<section class=\"press-kit\"")
        .expect("a press kit")..];
    // The photo: its web version as the thumbnail, sized so nothing moves, linking to the
    // original, with the original's pixel size and file size in Swedish (decimal comma).
    let size = format!("{:.1} MB", photo.len() as f64 / 1e6).replace('.', ",");
    assert!(
        kit.contains(&format!(
            "<a href=\"http://127.0.0.1:8080/releases/rapport/bild.jpg\" type=\"image/jpeg\" download><img src=\"http://127.0.0.1:8080/releases/rapport/_web/bild.jpg\" width=\"320\" height=\"213\" alt=\"Utredaren vid sitt skrivbord\" loading=\"lazy\"><br>bild.jpg</a> <span class=\"meta\">(3000 × 2000 px, {size})</span>"
        )),
        "{kit}"
    );
    // The logo is narrow enough to be its own thumbnail.
    assert!(
        kit.contains("<img src=\"http://127.0.0.1:8080/releases/rapport/logo.png\" width=\"320\" height=\"240\"")
            && kit.contains("(640 × 480 px, "),
        "{kit}"
    );
    // The bomb is offered as it is: its declared size is told, nothing was decoded.
    assert!(
        kit.contains("<img src=\"http://127.0.0.1:8080/releases/rapport/bomb.png\" width=\"320\" height=\"320\"")
            && kit.contains("(20000 × 20000 px, "),
        "{kit}"
    );
    // Documents with their type in words and their size.
    assert!(
        kit.contains("<a href=\"http://127.0.0.1:8080/releases/rapport/rapport.pdf\" type=\"application/pdf\" download>rapport.pdf</a> <span class=\"meta\">(PDF, 13 kB)</span>"),
        "{kit}"
    );
    assert!(
        kit.contains(">remiss.docx</a> <span class=\"meta\">(Word-dokument, 2,4 MB)</span>"),
        "{kit}"
    );
    // The page's own picture and its share card use the web version, with its size.
    assert!(
        page.contains("<figure><img src=\"http://127.0.0.1:8080/releases/rapport/_web/bild.jpg\" width=\"1200\" height=\"800\""),
        "{page}"
    );
    assert!(
        page.contains("<meta property=\"og:image\" content=\"http://127.0.0.1:8080/releases/rapport/_web/bild.jpg\">\n<meta property=\"og:image:width\" content=\"1200\">\n<meta property=\"og:image:height\" content=\"800\">"),
        "{page}"
    );
    // Every original is published as it is.
    assert_eq!(all["releases/rapport/bild.jpg"], photo);
    assert_eq!(all["releases/rapport/bomb.png"], bomb());
    // No web version of what is small already or may not be decoded.
    let web: Vec<&String> = all.keys().filter(|k| k.contains("/_web/")).collect();
    assert_eq!(web, [WEB]);
}

#[test]
fn a_web_sized_jpeg_is_made_once_and_kept_by_the_next_build() {
    let (p, _) = press_kit();
    let out = p.out();
    p.build_at("2020-03-02T00:00:00Z", &out);
    let web = std::fs::read(out.join(WEB)).expect("a web version");
    assert_eq!(
        image::guess_format(&web).expect("a picture"),
        ImageFormat::Jpeg
    );
    let decoded = image::load_from_memory(&web).expect("a valid JPEG");
    assert_eq!((decoded.width(), decoded.height()), (1200, 800));
    // A mark no encoder writes (a byte after the JPEG's end, which decoders ignore): a
    // build that encoded the picture again would write its own bytes over it, even where
    // they are the same as the first build's.
    std::fs::OpenOptions::new()
        .append(true)
        .open(out.join(WEB))
        .and_then(|mut f| f.write_all(b"\0"))
        .expect("mark the web version");
    let marked = std::fs::read(out.join(WEB)).expect("read");
    let before = std::fs::metadata(out.join(WEB)).expect("stat");

    p.build_at("2020-03-02T00:05:00Z", &out);
    let after = std::fs::metadata(out.join(WEB)).expect("stat");
    assert_eq!(
        (after.ino(), after.mtime(), after.mtime_nsec()),
        (before.ino(), before.mtime(), before.mtime_nsec()),
        "the second build wrote the web version again"
    );
    assert_eq!(
        std::fs::read(out.join(WEB)).expect("read"),
        marked,
        "the second build encoded the picture again"
    );

    // A new photo under the same name is made again.
    let new = RgbImage::from_pixel(2400, 600, image::Rgb([10, 200, 10]));
    let photo = p.path().join("releases/2020-03-01-rapport/bild.jpg");
    new.save_with_format(&photo, ImageFormat::Jpeg)
        .expect("save");
    // Later than the web version, whatever the file system's timestamp granularity.
    let later = after.modified().expect("mtime") + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&photo)
        .and_then(|f| f.set_modified(later))
        .expect("touch");
    p.build_at("2020-03-02T00:10:00Z", &out);
    let web = image::open(out.join(WEB)).expect("a valid JPEG");
    assert_eq!((web.width(), web.height()), (1200, 300));
}

#[test]
fn a_decompression_bomb_builds_and_check_warns_that_it_is_offered_as_it_is() {
    let (p, _) = press_kit();
    let o = p.run(&["check"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: bomb.png declares 20000 × 20000 pixels, more than 50 megapixels: it is offered as it is"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("bild.jpg") && !stderr.contains("logo.png"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn before_the_lift_neither_the_pictures_nor_their_web_versions_exist() {
    let (p, _) = press_kit();
    let out = p.out();
    p.build_at("2020-03-01T07:59:00Z", &out);
    let all = files(&out);
    let leaked: Vec<&String> = all
        .keys()
        .filter(|k| k.starts_with("releases/rapport/") || k.contains("_web"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    for (path, bytes) in &all {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains("bild.jpg") && !text.contains("_web"),
            "{path} names the picture before the lift"
        );
    }
    // At the lift, everything at once.
    p.build_at("2020-03-01T08:00:00Z", &out);
    assert!(out.join(WEB).exists() && out.join(PAGE).exists());
}
