#!/usr/bin/env python3
"""Independent validation of pressroom's feeds.

Usage: python3 tests/validators/feedcheck.py FILE {rss|atom|json} [-q] [--strict]

RSS 2.0 and Atom 1.0 are parsed twice: by feedparser (malformed XML -> bozo,
date parsing -> *_parsed) and by the standard library's ElementTree (exact
element presence, counts and attribute values). JSON Feed 1.1 is checked
against tests/fixtures/validators/jsonfeed-1.1.schema.json with `jsonschema`,
then by hand for what the schema cannot express (absolute URLs, RFC 3339
dates, unique ids).

Every check is printed as one line: "ok", "WARN" (a SHOULD of the spec or a
best practice) or "ERROR" (a MUST of the spec, or a field this project
requires). The last line is a summary.

Exit status: 0 no errors (warnings allowed unless --strict), 1 errors found
(or warnings with --strict), 2 usage error or unreadable file, 3 a Python
module is missing (run .ci/install-validators.sh).
"""

import argparse
import email.utils
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_PATH = os.path.normpath(
    os.path.join(HERE, "..", "fixtures", "validators", "jsonfeed-1.1.schema.json")
)

ATOM_NS = "http://www.w3.org/2005/Atom"
A = "{%s}" % ATOM_NS
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"

# RFC 822 date as RSS 2.0 uses it (4-digit year, as the RSS Advisory Board
# recommends); the day-of-week is optional in RFC 822 but checked if present.
RFC822_RE = re.compile(
    r"^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?"
    r"(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d{2}):(\d{2})(?::(\d{2}))? "
    r"([+-]\d{4}|GMT|UT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|[A-IK-Z])$"
)
# RFC 3339 date-time; Atom (RFC 4287 section 3.3) requires upper-case T and Z.
RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})([Tt])(\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"([Zz]|[+-]\d{2}:\d{2})$"
)
LANG_RE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")


class Report:
    def __init__(self, label, quiet):
        self.label = label
        self.quiet = quiet
        self.checks = 0
        self.errors = []
        self.warnings = []

    def ok(self, what):
        self.checks += 1
        if not self.quiet:
            print("ok    %s: %s" % (self.label, what))

    def error(self, what):
        self.checks += 1
        self.errors.append(what)
        print("ERROR %s: %s" % (self.label, what))

    def warn(self, what):
        self.checks += 1
        self.warnings.append(what)
        print("WARN  %s: %s" % (self.label, what))

    def expect(self, cond, what, problem=None):
        if cond:
            self.ok(what)
        else:
            self.error(problem or ("failed: " + what))
        return cond


def is_absolute_http_url(value):
    if not isinstance(value, str) or value != value.strip() or " " in value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def is_absolute_iri(value):
    if not isinstance(value, str) or value != value.strip() or " " in value:
        return False
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value))


def check_rfc3339(r, where, value, require_upper=False):
    m = RFC3339_RE.match(value or "")
    if not m:
        r.error("%s: %r is not an RFC 3339 date-time" % (where, value))
        return
    if require_upper and (m.group(4) != "T" or m.group(9) == "z"):
        r.error("%s: %r must use upper-case 'T' and 'Z' (RFC 4287 3.3)" % (where, value))
        return
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        r.error("%s: %r is not a valid date-time (%s)" % (where, value, exc))
        return
    r.ok("%s is RFC 3339: %s" % (where, value))


def check_rfc822(r, where, value):
    m = RFC822_RE.match(value or "")
    if not m:
        r.error("%s: %r is not an RFC 822 date (e.g. 'Thu, 18 Oct 2018 00:00:00 +0200')"
                % (where, value))
        return
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        r.error("%s: %r does not parse as a date (%s)" % (where, value, exc))
        return
    if m.group(1) and dt.strftime("%a") != m.group(1):
        r.error("%s: %r has the wrong day of week (should be %s)"
                % (where, value, dt.strftime("%a")))
        return
    r.ok("%s is RFC 822: %s" % (where, value))


def parse_xml(r, path):
    """feedparser's view and ElementTree's view of the same file."""
    import feedparser  # noqa: imported here so that --help works without it

    d = feedparser.parse(path)
    if d.bozo:
        r.error("feedparser: malformed feed (bozo): %s: %s"
                % (type(d.bozo_exception).__name__, d.bozo_exception))
    else:
        r.ok("feedparser: well-formed (bozo=0)")
    try:
        root = ET.parse(path).getroot()
        r.ok("ElementTree: well-formed XML")
    except ET.ParseError as exc:
        r.error("ElementTree: not well-formed XML: %s" % exc)
        root = None
    return d, root


def text_of(el):
    return (el.text or "").strip() if el is not None else ""


def check_required_children(r, parent, where, names, ns=""):
    """Each name must occur exactly once with non-empty text."""
    for name in names:
        found = parent.findall(ns + name)
        if len(found) == 0:
            r.error("%s: missing <%s>" % (where, name))
        elif len(found) > 1:
            r.error("%s: <%s> occurs %d times, expected once" % (where, name, len(found)))
        elif not text_of(found[0]):
            r.error("%s: <%s> is empty" % (where, name))
        else:
            r.ok("%s: <%s> present" % (where, name))


def check_rss(r, path):
    d, root = parse_xml(r, path)
    r.expect(d.get("version") == "rss20", "feedparser detects RSS 2.0",
             "feedparser detects version %r, expected 'rss20'" % d.get("version"))
    if root is None:
        return
    if not r.expect(root.tag == "rss" and root.get("version") == "2.0",
                    "root is <rss version=\"2.0\">",
                    "root is <%s version=%r>, expected <rss version=\"2.0\">"
                    % (root.tag, root.get("version"))):
        return
    channels = root.findall("channel")
    if not r.expect(len(channels) == 1, "exactly one <channel>",
                    "%d <channel> elements, expected 1" % len(channels)):
        return
    ch = channels[0]
    check_required_children(r, ch, "channel", ["title", "link", "description"])
    link = text_of(ch.find("link"))
    if link:
        r.expect(is_absolute_http_url(link), "channel <link> is an absolute URL",
                 "channel <link> %r is not an absolute http(s) URL" % link)
    lang = ch.find("language")
    if lang is not None:
        r.expect(LANG_RE.match(text_of(lang)) is not None,
                 "channel <language> is a language tag: %s" % text_of(lang),
                 "channel <language> %r is not a language tag" % text_of(lang))
    for name in ("pubDate", "lastBuildDate"):
        for el in ch.findall(name):
            check_rfc822(r, "channel <%s>" % name, text_of(el))
    if ch.find("lastBuildDate") is not None or ch.find("pubDate") is not None:
        r.expect(d.feed.get("updated_parsed") or d.feed.get("published_parsed"),
                 "feedparser parsed the channel date",
                 "feedparser could not parse the channel pubDate/lastBuildDate")
    selfs = [l for l in ch.findall(A + "link") if l.get("rel") == "self"]
    if not selfs:
        r.warn("channel: no <atom:link rel=\"self\"> (RSS Advisory Board best practice)")
    for l in selfs:
        href = l.get("href", "")
        r.expect(is_absolute_http_url(href), "channel atom:link rel=self href is absolute: %s" % href,
                 "channel atom:link rel=self href %r is not an absolute URL" % href)
        if l.get("type") != "application/rss+xml":
            r.warn("channel atom:link rel=self type is %r, expected 'application/rss+xml'"
                   % l.get("type"))

    items = ch.findall("item")
    r.expect(len(items) == len(d.entries),
             "feedparser and ElementTree both see %d item(s)" % len(items),
             "ElementTree sees %d <item>, feedparser %d entries" % (len(items), len(d.entries)))
    seen = {}
    for i, item in enumerate(items):
        where = "item[%d]" % i
        check_required_children(r, item, where, ["title", "link", "guid", "pubDate"])
        link = text_of(item.find("link"))
        if link:
            r.expect(is_absolute_http_url(link), "%s <link> is an absolute URL" % where,
                     "%s <link> %r is not an absolute http(s) URL" % (where, link))
        guid_el = item.find("guid")
        guid = text_of(guid_el)
        if guid:
            permalink = (guid_el.get("isPermaLink") or "true").strip()
            if permalink not in ("true", "false"):
                r.error("%s <guid isPermaLink=%r>: must be 'true' or 'false'" % (where, permalink))
            elif permalink == "true":
                r.expect(is_absolute_http_url(guid),
                         "%s <guid> is a permalink URL" % where,
                         "%s <guid> %r is a permalink (isPermaLink absent or true) but not an "
                         "absolute URL" % (where, guid))
            else:
                r.ok("%s <guid isPermaLink=\"false\">" % where)
            if guid in seen:
                r.error("%s <guid> %r duplicates item[%d]" % (where, guid, seen[guid]))
            seen[guid] = i
        for el in item.findall("pubDate"):
            check_rfc822(r, "%s <pubDate>" % where, text_of(el))
        if i < len(d.entries):
            r.expect(d.entries[i].get("published_parsed") is not None,
                     "%s: feedparser parsed <pubDate>" % where,
                     "%s: feedparser could not parse <pubDate> (published_parsed is None)" % where)


def check_atom(r, path):
    d, root = parse_xml(r, path)
    r.expect(d.get("version") == "atom10", "feedparser detects Atom 1.0",
             "feedparser detects version %r, expected 'atom10'" % d.get("version"))
    if root is None:
        return
    if not r.expect(root.tag == A + "feed", "root is atom:feed",
                    "root is %s, expected {%s}feed" % (root.tag, ATOM_NS)):
        return
    for el in root.iter():
        lang = el.get(XML_LANG)
        if lang is not None and lang != "" and not LANG_RE.match(lang):
            r.error("xml:lang=%r on <%s> is not a language tag (RFC 3066/4646)"
                    % (lang, el.tag.replace(A, "")))
    check_required_children(r, root, "feed", ["id", "title", "updated"], ns=A)
    fid = text_of(root.find(A + "id"))
    if fid:
        r.expect(is_absolute_iri(fid), "feed <id> is an absolute IRI: %s" % fid,
                 "feed <id> %r is not an absolute IRI (RFC 4287 4.2.6)" % fid)
    for el in root.findall(A + "updated"):
        check_rfc3339(r, "feed <updated>", text_of(el), require_upper=True)
    r.expect(d.feed.get("updated_parsed") is not None, "feedparser parsed feed <updated>",
             "feedparser could not parse feed <updated> (updated_parsed is None)")
    links = root.findall(A + "link")
    selfs = [l for l in links if l.get("rel") == "self"]
    if r.expect(len(selfs) >= 1, "feed has <link rel=\"self\">",
                "feed: missing <link rel=\"self\"> (RFC 4287 4.1.1 SHOULD; required here)"):
        for l in selfs:
            href = l.get("href", "")
            r.expect(is_absolute_http_url(href), "feed rel=self href is absolute: %s" % href,
                     "feed rel=self href %r is not an absolute URL" % href)
            if l.get("type") != "application/atom+xml":
                r.warn("feed rel=self type is %r, expected 'application/atom+xml'" % l.get("type"))
    alternates = {}
    for l in links:
        if l.get("rel", "alternate") == "alternate":
            key = (l.get("type"), l.get("hreflang"))
            if key in alternates:
                r.error("feed: two rel=alternate links with the same type and hreflang %r "
                        "(RFC 4287 4.1.1)" % (key,))
            alternates[key] = l.get("href")
    feed_has_author = root.find(A + "author") is not None

    entries = root.findall(A + "entry")
    r.expect(len(entries) == len(d.entries),
             "feedparser and ElementTree both see %d entr%s"
             % (len(entries), "y" if len(entries) == 1 else "ies"),
             "ElementTree sees %d <entry>, feedparser %d entries" % (len(entries), len(d.entries)))
    seen = {}
    for i, entry in enumerate(entries):
        where = "entry[%d]" % i
        check_required_children(r, entry, where, ["id", "title", "updated"], ns=A)
        eid = text_of(entry.find(A + "id"))
        if eid:
            r.expect(is_absolute_iri(eid), "%s <id> is an absolute IRI" % where,
                     "%s <id> %r is not an absolute IRI (RFC 4287 4.2.6)" % (where, eid))
            key = (eid, text_of(entry.find(A + "updated")))
            if key in seen:
                r.error("%s: same <id> and <updated> as entry[%d] (RFC 4287 4.1.1)"
                        % (where, seen[key]))
            seen[key] = i
        for name in ("updated", "published"):
            for el in entry.findall(A + name):
                check_rfc3339(r, "%s <%s>" % (where, name), text_of(el), require_upper=True)
        if i < len(d.entries):
            r.expect(d.entries[i].get("updated_parsed") is not None,
                     "%s: feedparser parsed <updated>" % where,
                     "%s: feedparser could not parse <updated> (updated_parsed is None)" % where)
            if entry.find(A + "published") is not None:
                r.expect(d.entries[i].get("published_parsed") is not None,
                         "%s: feedparser parsed <published>" % where,
                         "%s: feedparser could not parse <published>" % where)
        elinks = entry.findall(A + "link")
        has_alt = any(l.get("rel", "alternate") == "alternate" for l in elinks)
        r.expect(has_alt or entry.find(A + "content") is not None,
                 "%s has rel=alternate link or content" % where,
                 "%s: needs a rel=alternate <link> or a <content> (RFC 4287 4.1.1)" % where)
        for l in elinks:
            href = l.get("href", "")
            if not is_absolute_iri(href):
                r.warn("%s: <link href=%r> is relative (no xml:base checked)" % (where, href))
        r.expect(feed_has_author or entry.find(A + "author") is not None
                 or entry.find(A + "source/" + A + "author") is not None,
                 "%s has an author (own or feed's)" % where,
                 "%s: no <author> and the feed has none (RFC 4287 4.1.1/4.1.2)" % where)
        content = entry.find(A + "content")
        if content is not None and content.get("src") is not None:
            r.expect(entry.find(A + "summary") is not None, "%s out-of-line content has summary" % where,
                     "%s: <content src> requires a <summary> (RFC 4287 4.1.1.1)" % where)


def check_json(r, path):
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        doc = json.loads(raw.decode("utf-8"))
        r.ok("well-formed UTF-8 JSON")
    except (UnicodeDecodeError, ValueError) as exc:
        r.error("not well-formed UTF-8 JSON: %s" % exc)
        return
    import jsonschema  # noqa: imported here so that --help works without it

    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        schema = json.load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    errs = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errs:
        for e in errs:
            loc = "/" + "/".join(str(p) for p in e.absolute_path)
            r.error("jsonschema (%s): at %s: %s" % (os.path.basename(SCHEMA_PATH), loc, e.message))
    else:
        r.ok("jsonschema: valid against %s" % os.path.basename(SCHEMA_PATH))
    if not isinstance(doc, dict):
        return

    r.expect(doc.get("version") == JSONFEED_VERSION, "version is %s" % JSONFEED_VERSION,
             "version is %r, expected %r" % (doc.get("version"), JSONFEED_VERSION))
    r.expect(isinstance(doc.get("title"), str) and doc["title"].strip(), "title present",
             "title missing or empty")
    for key in ("home_page_url", "feed_url"):
        if key not in doc:
            r.warn("%s missing (spec: 'strongly recommended', required for public feeds)" % key)
        else:
            r.expect(is_absolute_http_url(doc[key]), "%s is an absolute URL: %s" % (key, doc[key]),
                     "%s %r is not an absolute http(s) URL" % (key, doc[key]))
    for key in ("next_url", "icon", "favicon"):
        if key in doc:
            r.expect(is_absolute_http_url(doc[key]), "%s is an absolute URL" % key,
                     "%s %r is not an absolute http(s) URL" % (key, doc[key]))
    if "author" in doc and "authors" not in doc:
        r.warn("top-level 'author' is deprecated in 1.1; use 'authors'")

    def check_authors(where, obj):
        for j, a in enumerate(obj.get("authors") or []):
            if isinstance(a, dict):
                for k in ("url", "avatar"):
                    if k in a and not is_absolute_iri(a[k]):
                        r.error("%s authors[%d].%s %r is not an absolute URL" % (where, j, k, a[k]))

    check_authors("feed", doc)
    items = doc.get("items")
    if not isinstance(items, list):
        r.error("items missing or not an array")
        return
    r.ok("items is an array of %d" % len(items))
    seen = {}
    for i, item in enumerate(items):
        where = "items[%d]" % i
        if not isinstance(item, dict):
            r.error("%s is not an object" % where)
            continue
        iid = item.get("id")
        if r.expect(isinstance(iid, str) and iid.strip(), "%s id present" % where,
                    "%s: id missing, empty or not a string" % where):
            if iid in seen:
                r.error("%s: id %r duplicates items[%d]" % (where, iid, seen[iid]))
            seen[iid] = i
        r.expect(any(isinstance(item.get(k), str) for k in ("content_html", "content_text")),
                 "%s has content_html or content_text" % where,
                 "%s: needs content_html or content_text" % where)
        for key in ("url", "external_url", "image", "banner_image"):
            if key in item:
                r.expect(is_absolute_http_url(item[key]), "%s %s is an absolute URL" % (where, key),
                         "%s %s %r is not an absolute http(s) URL" % (where, key, item[key]))
        for key in ("date_published", "date_modified"):
            if key in item:
                check_rfc3339(r, "%s %s" % (where, key), item[key])
        if "author" in item and "authors" not in item:
            r.warn("%s: 'author' is deprecated in 1.1; use 'authors'" % where)
        check_authors(where, item)
        for j, att in enumerate(item.get("attachments") or []):
            if isinstance(att, dict) and "url" in att and not is_absolute_http_url(att["url"]):
                r.error("%s attachments[%d].url %r is not an absolute URL" % (where, j, att["url"]))


def main(argv):
    ap = argparse.ArgumentParser(description="Validate an RSS 2.0, Atom 1.0 or JSON Feed 1.1 file.")
    ap.add_argument("file")
    ap.add_argument("format", choices=["rss", "atom", "json"])
    ap.add_argument("-q", "--quiet", action="store_true", help="print only problems and the summary")
    ap.add_argument("--strict", action="store_true", help="treat warnings as errors")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.file):
        print("feedcheck: %s: no such file" % args.file, file=sys.stderr)
        return 2
    r = Report("%s [%s]" % (args.file, args.format), args.quiet)
    try:
        {"rss": check_rss, "atom": check_atom, "json": check_json}[args.format](r, args.file)
    except ImportError as exc:
        print("feedcheck: missing Python module: %s (run .ci/install-validators.sh)" % exc,
              file=sys.stderr)
        return 3
    failed = bool(r.errors) or (args.strict and bool(r.warnings))
    print("feedcheck: %s: %s — %d checks, %d errors, %d warnings"
          % (args.file, "FAIL" if failed else "PASS", r.checks, len(r.errors), len(r.warnings)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
