//! `sitemap.xml` (sitemaps.org 0.9), written with quick-xml so every URL is escaped.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// One page: its absolute URL and when it last changed (RFC 3339).
pub struct Page {
    pub loc: String,
    pub lastmod: Option<String>,
}

pub fn write(pages: &[Page]) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    // Writing into a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w
        .create_element("urlset")
        .with_attribute(("xmlns", "http://www.sitemaps.org/schemas/sitemap/0.9"))
        .write_inner_content(|w| {
            for page in pages {
                w.create_element("url").write_inner_content(|w| {
                    w.create_element("loc")
                        .write_text_content(BytesText::new(&page.loc))?;
                    if let Some(lastmod) = &page.lastmod {
                        w.create_element("lastmod")
                            .write_text_content(BytesText::new(lastmod))?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        });
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}
