#!/usr/bin/env python3
"""The W3C Feed Validation Service's rules that can fire on pressroom's feeds.

Usage: python3 tests/validators/w3c_rules.py FILE {rss|atom} SELF_URL

The service (https://validator.w3.org/feed/) cannot be installed here, but its rules are
public: https://validator.w3.org/feed/docs/. This script states the ones our RSS 2.0 and
Atom 1.0 output could break as assertions over the parsed XML, each named by the
service's message and documentation page, so a warning the service would give shows up
in `cargo test` first. SELF_URL is the address the feed is served at.

Each broken rule is printed as one line, "WARN <Rule> (<doc page>): <where and what>".
The last line is a JSON object counting what was checked (items, enclosures,
media:content, dc:creator, contents, ...), so a test can tell a rule held from a rule
that had nothing to look at.

Exit status: 0 no rule broken, 1 a rule broken, 2 usage error or unreadable file.
"""

import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

DOCS = "https://validator.w3.org/feed/docs/"
ATOM = "http://www.w3.org/2005/Atom"
DC = "http://purl.org/dc/elements/1.1/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
MEDIA = "http://search.yahoo.com/mrss/"
XML = "http://www.w3.org/XML/1998/namespace"

# Namespaces the service knows (its list is longer; these are the ones a feed of ours
# may declare). Any other is "Use of unknown namespace".
KNOWN_NAMESPACES = {ATOM, DC, CONTENT, MEDIA, XML, "http://purl.org/dc/terms/",
                    "http://purl.org/syndication/thread/1.0", "http://www.w3.org/1999/xhtml"}

# Link relations the service accepts on atom:link (IANA's registry as it knows it).
REGISTERED_RELS = {"alternate", "current", "describedby", "edit", "edit-media", "enclosure",
                   "first", "hub", "last", "license", "next", "next-archive", "payment",
                   "prev-archive", "previous", "related", "replies", "search", "self",
                   "service", "up", "via"}

# Elements the service reports as a security risk inside HTML content: active content,
# document structure and elements that load or restyle the reader's page.
RISKY_ELEMENTS = {"script", "style", "iframe", "frame", "frameset", "noframes", "object",
                  "embed", "applet", "param", "link", "meta", "base", "basefont", "html",
                  "head", "body", "title", "xmp", "plaintext", "listing", "isindex", "slot"}

MEDIUMS = {"image", "audio", "video", "document", "executable"}
MIME_RE = re.compile(r'^[^\s()<>,;:"/\[\]?=]+/[^\s()<>,;:"/\[\]?=]+(\s*;.*)?$')
FULL_URL_RE = re.compile(r"^[a-zA-Z][0-9a-zA-Z+.\-]*:(//)?[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,#]+$")
# RSS's author, managingEditor and webMaster: "address (Real Name)".
EMAIL_WITH_NAME_RE = re.compile(r"^[^@\s]+@[^@\s]+\s+\(.+\)$")


class Rules:
    def __init__(self):
        self.broken = []
        self.counts = {}

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def check(self, ok, rule, doc, where):
        if not ok:
            self.broken.append("WARN %s (%s%s): %s" % (rule, DOCS, doc, where))


class Html(HTMLParser):
    """The tags and attributes of an HTML fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def check_html(r, html, where):
    """safeHtml: what the service checks in description, content:encoded and Atom html."""
    r.count("html contents")
    parser = Html()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        r.check(tag not in RISKY_ELEMENTS, "SecurityRisk", "warning/SecurityRisk.html",
                "%s should not contain %s tag" % (where, tag))
        for name in attrs:
            r.check(not name.startswith("on"), "SecurityRiskAttr",
                    "warning/SecurityRiskAttr.html", "%s: <%s %s>" % (where, tag, name))
            r.check(name != "style", "DangerousStyleAttr", "warning/DangerousStyleAttr.html",
                    "%s: <%s style>" % (where, tag))
        ref = attrs.get("href") if tag == "a" else attrs.get("src") if tag == "img" else None
        if ref is not None:
            r.count("links in content")
            r.check(re.match(r"\w+:", ref.strip()) is not None, "ContainsRelRef",
                    "warning/ContainsRelRef.html",
                    "%s should not contain relative URL references: %r" % (where, ref))


def namespaces(path):
    """Every (prefix, URI) declared in the document."""
    return [ns for _, ns in ET.iterparse(path, events=("start-ns",))]


def check_namespaces(r, path):
    for prefix, uri in namespaces(path):
        r.check(uri in KNOWN_NAMESPACES, "UnknownNamespace", "warning/UnknownNamespace.html",
                "Use of unknown namespace: %s (prefix %r)" % (uri, prefix))


def check_self(r, links, self_url, where):
    selfs = [l for l in links if l.get("rel") == "self"]
    r.check(selfs, "MissingAtomSelfLink", "warning/MissingAtomSelfLink.html",
            '%s: Missing atom:link with rel="self"' % where)
    for l in selfs:
        r.check(l.get("href") == self_url, "SelfDoesntMatchLocation",
                "warning/SelfDoesntMatchLocation.html",
                "Self reference doesn't match document location: %r, served at %r"
                % (l.get("href"), self_url))


def both(r, el, core, ext, where, rule, doc):
    """DuplicateSemantics: a core element and the extension that means the same."""
    r.check(el.find(core) is None or el.find(ext) is None, rule, doc,
            "%s should not include both %s and %s" % (where, core, ext))


def check_rss(r, path, self_url):
    root = ET.parse(path).getroot()
    ch = root.find("channel")
    check_namespaces(r, path)
    check_self(r, ch.findall("{%s}link" % ATOM), self_url, "channel")
    dup = ("DuplicateSemantics", "warning/DuplicateSemantics.html")
    for core, ext in [("managingEditor", "{%s}creator" % DC), ("pubDate", "{%s}date" % DC),
                      ("language", "{%s}language" % DC), ("webMaster", "{%s}publisher" % DC),
                      ("copyright", "{%s}rights" % DC), ("category", "{%s}subject" % DC),
                      ("lastBuildDate", "{http://purl.org/dc/terms/}modified")]:
        both(r, ch, core, ext, "A channel", *dup)
    for name in ("managingEditor", "webMaster"):
        for el in ch.findall(name):
            r.check(EMAIL_WITH_NAME_RE.match(el.text or ""), "MissingRealName",
                    "warning/MissingRealName.html",
                    "channel <%s> %r is not 'address (Name)'" % (name, el.text))
    for i, item in enumerate(ch.findall("item")):
        where = "item[%d]" % i
        r.count("items")
        r.check(item.find("guid") is not None, "MissingGuid", "warning/MissingGuid.html",
                "%s should contain a guid element" % where)
        enclosures = item.findall("enclosure")
        r.count("enclosures", len(enclosures))
        r.check(len(enclosures) <= 1, "DuplicateEnclosure", "warning/DuplicateEnclosure.html",
                "%s contains more than one enclosure" % where)
        for e in enclosures:
            url, length, kind = e.get("url", ""), e.get("length", ""), e.get("type", "")
            r.check(re.match(r"^https?://[^/]", url), "InvalidURLAttribute",
                    "error/InvalidURLAttribute.html", "%s enclosure url %r" % (where, url))
            r.check(length.isdigit(), "InvalidIntegerAttribute",
                    "error/InvalidIntegerAttribute.html", "%s enclosure length %r" % (where, length))
            r.check(MIME_RE.match(kind), "InvalidMIMEAttribute",
                    "error/InvalidMIMEAttribute.html", "%s enclosure type %r" % (where, kind))
        dup = ("DuplicateItemSemantics", "warning/DuplicateItemSemantics.html")
        for core, ext in [("pubDate", "{%s}date" % DC), ("author", "{%s}creator" % DC),
                          ("category", "{%s}subject" % DC), ("guid", "{%s}id" % ATOM),
                          ("pubDate", "{%s}published" % ATOM), ("source", "{%s}source" % DC)]:
            both(r, item, core, ext, "An item", *dup)
        for el in item.findall("author"):
            # RSS 2.0: "Email address of the author of the item"; a name alone is invalid.
            r.check(EMAIL_WITH_NAME_RE.match(el.text or ""), "InvalidContact",
                    "error/InvalidContact.html",
                    "%s <author> %r must be an email address (with the name in brackets)"
                    % (where, el.text))
        r.count("dc:creator", len(item.findall("{%s}creator" % DC)))
        children = [c.tag for c in item]
        encoded = "{%s}encoded" % CONTENT
        if encoded in children:
            r.check("description" in children
                    and children.index("description") < children.index(encoded),
                    "NeedDescriptionBeforeContent", "warning/NeedDescriptionBeforeContent.html",
                    "%s: Ensure description precedes content:encoded" % where)
            check_html(r, item.find(encoded).text or "", "%s content:encoded" % where)
        for d in item.findall("description"):
            check_html(r, d.text or "", "%s description" % where)
        for m in item.findall("{%s}content" % MEDIA):
            r.count("media:content")
            url, size = m.get("url", ""), m.get("fileSize")
            r.check(FULL_URL_RE.match(url), "InvalidFullLink", "error/InvalidFullLink.html",
                    "%s media:content url %r must be a full and valid URL" % (where, url))
            r.check(size is None or (size.isdigit() and int(size) > 0),
                    "InvalidPositiveInteger", "error/InvalidPositiveInteger.html",
                    "%s media:content fileSize %r" % (where, size))
            r.check(m.get("medium") in MEDIUMS | {None}, "InvalidMediaMedium",
                    "error/InvalidMediaMedium.html",
                    '%s: Invalid content medium: "%s"' % (where, m.get("medium")))
            r.check(m.get("type") is None or MIME_RE.match(m.get("type")),
                    "InvalidMIMEAttribute", "error/InvalidMIMEAttribute.html",
                    "%s media:content type %r" % (where, m.get("type")))


def check_atom(r, path, self_url):
    A = "{%s}" % ATOM
    root = ET.parse(path).getroot()
    check_namespaces(r, path)
    for prefix, uri in namespaces(path):
        r.check(not (uri == ATOM and prefix), "AvoidNamespacePrefix",
                "warning/AvoidNamespacePrefix.html", "Avoid Namespace Prefix: %s" % prefix)
    check_self(r, root.findall(A + "link"), self_url, "feed")
    feed_author = root.find(A + "author") is not None
    ids = set()
    for el in root.iter(A + "link"):
        rel = el.get("rel", "alternate")
        r.check(rel in REGISTERED_RELS or FULL_URL_RE.match(rel), "UnregisteredAtomLinkRel",
                "warning/UnregisteredAtomLinkRel.html", "Unregistered link relationship %r" % rel)
        if el.get("length") is not None:
            r.check(el.get("length").isdigit(), "InvalidNonNegativeInteger",
                    "error/InvalidNonNegativeInteger.html", "link length %r" % el.get("length"))
        if el.get("type") is not None:
            r.check(MIME_RE.match(el.get("type")), "InvalidMIMEType", "error/InvalidMIMEType.html",
                    "link type %r" % el.get("type"))
    for i, entry in enumerate(root.findall(A + "entry")):
        where = "entry[%d]" % i
        r.count("items")
        eid = entry.findtext(A + "id")
        r.check(eid not in ids, "DuplicateEntries", "warning/DuplicateEntries.html",
                "%s: two entries with the id %r" % (where, eid))
        ids.add(eid)
        authors = entry.findall(A + "author")
        r.count("entry authors", len(authors))
        r.check(authors or feed_author, "MissingElement", "error/MissingElement.html",
                "%s must contain an author element" % where)
        links = entry.findall(A + "link")
        r.count("enclosures", len([l for l in links if l.get("rel") == "enclosure"]))
        alternates = [(l.get("type"), l.get("hreflang")) for l in links
                      if l.get("rel", "alternate") == "alternate"]
        r.check(len(alternates) == len(set(alternates)), "DuplicateAtomLink",
                "error/DuplicateAtomLink.html", "%s: two alternate links of one type" % where)
        content, summary = entry.find(A + "content"), entry.find(A + "summary")
        r.check(content is not None or summary is not None, "MissingTextualContent",
                "warning/MissingTextualContent.html", "%s: Missing textual content" % where)
        for el in (content, summary):
            if el is not None and el.get("type") == "html":
                check_html(r, el.text or "", "%s %s" % (where, el.tag[len(A):]))


def main(argv):
    if len(argv) != 3 or argv[1] not in ("rss", "atom"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, kind, self_url = argv
    r = Rules()
    try:
        {"rss": check_rss, "atom": check_atom}[kind](r, path, self_url)
    except (OSError, ET.ParseError) as exc:
        print("w3c_rules: %s: %s" % (path, exc), file=sys.stderr)
        return 2
    for line in r.broken:
        print(line)
    print(json.dumps(r.counts, sort_keys=True))
    return 1 if r.broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
