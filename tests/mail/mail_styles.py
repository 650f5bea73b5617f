#!/usr/bin/env python3
"""Reads the HTML part of a mail as a webmail client that drops <style> elements, <link>ed
stylesheets and the styles on <body> would keep it, and says what depends on them.

Usage: mail_styles.py FILE.html
Prints JSON: {"style_elements": n, "stylesheets": n, "body_style": "..." or null,
"classes": n (class attributes: only a stylesheet gives them a look), "unstyled": [elements
inside <body> with no style attribute, but for inline phrasing and list or table rows,
which inherit], "headings": [{"tag", "text", "font_size" (px, from its style)}]}.
Python's own html.parser: nothing to install.
"""

import json
import re
import sys
from html.parser import HTMLParser

# Elements that take their look from their parent: inline phrasing, list items, table rows.
INHERIT = {"strong", "em", "b", "i", "br", "time", "span", "sup", "sub", "del", "s", "abbr",
           "li", "thead", "tbody", "tfoot", "tr", "wbr"}
VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "col", "source", "area", "base"}


class Mail(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.style_elements = 0
        self.stylesheets = 0
        self.body_style = None
        self.classes = 0
        self.unstyled = []
        self.headings = []
        self.in_body = False
        self.heading = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "style":
            self.style_elements += 1
        if tag == "link" and "stylesheet" in (attrs.get("rel") or ""):
            self.stylesheets += 1
        if "class" in attrs:
            self.classes += 1
        if tag == "body":
            self.in_body = True
            self.body_style = attrs.get("style")
            return
        if not self.in_body:
            return
        style = attrs.get("style") or ""
        if tag not in INHERIT and not style.strip():
            self.unstyled.append("<%s %s>" % (tag, " ".join("%s=%r" % a for a in attrs.items())))
        if re.fullmatch(r"h[1-6]", tag):
            size = re.search(r"font-size:\s*([0-9.]+)px", style)
            self.heading = {"tag": tag, "text": "",
                            "font_size": float(size.group(1)) if size else None}

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if self.heading is not None and tag == self.heading["tag"]:
            self.heading["text"] = " ".join(self.heading["text"].split())
            self.headings.append(self.heading)
            self.heading = None

    def handle_data(self, data):
        if self.heading is not None:
            self.heading["text"] += data


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        html = f.read()
    m = Mail()
    m.feed(html)
    m.close()
    print(json.dumps({
        "style_elements": m.style_elements,
        "stylesheets": m.stylesheets,
        "body_style": m.body_style,
        "classes": m.classes,
        "unstyled": m.unstyled,
        "headings": m.headings,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
