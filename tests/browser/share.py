#!/usr/bin/env python3
"""Reads back what a chat or social site takes from a page when a link to it is pasted:
Open Graph properties and JSON-LD, by extruct (the parser Scrapinghub wrote for exactly
this), and Twitter card <meta name> tags, by Python's own HTML parser.

Usage: share.py PAGE.html URL
Prints JSON: {"opengraph": {property: [values]}, "jsonld": [items], "twitter": {name: value},
"scripts": number of <script> elements}.
"""

import json
import sys
from html.parser import HTMLParser

try:
    import extruct
except ImportError:
    print("share.py: Python extruct is not installed (.ci/install-test-tools.sh)")
    sys.exit(2)


class Metas(HTMLParser):
    def __init__(self):
        super().__init__()
        self.twitter = {}
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "meta" and (attrs.get("name") or "").startswith("twitter:"):
            self.twitter[attrs["name"]] = attrs.get("content")


def main():
    path, url = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        html = f.read()
    data = extruct.extract(html, base_url=url, syntaxes=["opengraph", "json-ld"],
                           uniform=False, errors="strict")
    opengraph = {}
    for item in data.get("opengraph", []):
        for key, value in item.get("properties", []):
            opengraph.setdefault(key, []).append(value)
    metas = Metas()
    metas.feed(html)
    print(json.dumps({"opengraph": opengraph, "jsonld": data.get("json-ld", []),
                      "twitter": metas.twitter, "scripts": metas.scripts},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
