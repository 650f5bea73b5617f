#!/usr/bin/env python3
"""Loads pages of a running newsroom in headless Chromium, as a journalist's browser would,
and checks what a person would notice: no sideways scrolling at a desktop and a phone
width, the texts they came for on screen, and axe-core's accessibility rules (0 violations).

Usage: check.py SPEC.json
SPEC: {"base": "http://127.0.0.1:PORT", "widths": [1280, 390],
       "pages": [{"path": "/", "texts": ["..."]}, ...]}
A page may also give "status" (200 unless said), "title", "lang" (of <html>), "absent"
texts, and "steps": buttons to press in turn, [{"click": "CSS selector", "texts": [...]}],
each page after one checked like the first; and "selectors" (CSS), each of which must
match an element that is drawn (a box of some size; a <link> or <meta> counts as found).

Chromium and its driver are Debian's (`chromium`, `chromium-driver`), axe-core the npm
package: `.ci/install-test-tools.sh` installs all three, and nothing is downloaded here.
Prints one line per page and width; exits 1 with every problem listed, 2 when a tool is
missing. With SCREENSHOTS=DIR set, saves a PNG of each page at each width there.
"""

import json
import os
import shutil
import subprocess
import sys


def axe_source():
    """axe.min.js from the npm package (a global install, or AXE_JS)."""
    candidates = []
    if os.environ.get("AXE_JS"):
        candidates.append(os.environ["AXE_JS"])
    npm = shutil.which("npm")
    if npm:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True).stdout.strip()
        if root:
            candidates.append(os.path.join(root, "axe-core", "axe.min.js"))
    candidates += ["/usr/lib/node_modules/axe-core/axe.min.js",
                   "/usr/local/lib/node_modules/axe-core/axe.min.js"]
    for path in candidates:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    print("check.py: axe-core is not installed (npm install -g axe-core; "
          ".ci/install-test-tools.sh); looked at " + ", ".join(candidates))
    sys.exit(2)


def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("check.py: Python selenium is not installed (.ci/install-test-tools.sh)")
        sys.exit(2)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    if not chromium or not os.path.exists(driver):
        print("check.py: chromium and chromedriver are not installed "
              "(apt-get install chromium chromium-driver; .ci/install-test-tools.sh)")
        sys.exit(2)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--window-size=1280,900",
                "--lang=sv-SE", "--disable-extensions", "--disable-background-networking"]:
        options.add_argument(arg)
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def page_name(page):
    """A page's name in screenshot files: its "name", else its path."""
    return page.get("name") or page["path"].strip("/").replace("/", "_") or "index"


def check(driver, axe, width, where, page, problems, shots):
    """Checks the page the browser shows against `page`'s expectations."""
    status = driver.execute_script(
        "const e = performance.getEntriesByType('navigation')[0];"
        "return e && e.responseStatus;")
    if status and status != page.get("status", 200):
        problems.append("%s: HTTP %s" % (where, status))
    inner = driver.execute_script("return window.innerWidth")
    scroll = driver.execute_script(
        "return Math.max(document.documentElement.scrollWidth,"
        " document.body ? document.body.scrollWidth : 0)")
    if inner != width:
        problems.append("%s: the viewport is %s px wide" % (where, inner))
    if scroll > inner:
        wide = driver.execute_script(
            "const w = window.innerWidth; return [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > w"
            " || (e.clientWidth > 0 && e.scrollWidth > e.clientWidth))"
            ".slice(0, 5).map(e => e.outerHTML.slice(0, 120));")
        problems.append("%s: scrolls sideways (%d px of content in %d): %s"
                        % (where, scroll, inner, wide))
    shown = driver.execute_script("return document.body.innerText")
    for text in page.get("texts", []):
        if text not in shown:
            problems.append("%s: %r is not on screen; the page shows:\n%s"
                            % (where, text, shown[:600]))
    for text in page.get("absent", []):
        if text in shown:
            problems.append("%s: %r is on screen" % (where, text))
    for selector in page.get("selectors", []):
        drawn = driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].filter(e =>"
            " e.tagName === 'LINK' || e.tagName === 'META' ||"
            " (e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0))"
            ".length", selector)
        if not drawn:
            problems.append("%s: nothing drawn matches %s" % (where, selector))
    title = driver.title
    if page.get("title") is not None and title != page["title"]:
        problems.append("%s: the title is %r, not %r" % (where, title, page["title"]))
    lang = driver.execute_script("return document.documentElement.lang")
    if page.get("lang") is not None and lang != page["lang"]:
        problems.append("%s: <html lang=%r>, not %r" % (where, lang, page["lang"]))
    driver.execute_script(axe)
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,"
        " help: v.help, nodes: v.nodes.map(n => n.html + ' ' + n.failureSummary)}))))"
        ".catch(e => done([{id: 'axe-error', help: String(e), nodes: []}]));")
    for v in violations:
        problems.append("%s: axe %s (%s): %s\n    %s" % (
            where, v["id"], v.get("impact"), v["help"], "\n    ".join(v["nodes"])))
    if shots:
        os.makedirs(shots, exist_ok=True)
        driver.save_screenshot(os.path.join(shots, "%s-%d.png" % (page_name(page), width)))
    print("checked %s: %d px of content, %d axe violations, title %r"
          % (where, scroll, len(violations), title))


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    axe = axe_source()
    shots = os.environ.get("SCREENSHOTS")
    problems = []
    driver = browser()
    driver.set_script_timeout(60)
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        for width in spec.get("widths", [1280, 390]):
            # The viewport itself, not the window: 390 CSS pixels is a phone's width.
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            for page in spec["pages"]:
                url = spec["base"].rstrip("/") + page["path"]
                where = "%s at %d px" % (page["path"], width)
                driver.get(url)
                check(driver, axe, width, where, page, problems, shots)
                # Buttons a reader presses, each page after one checked like the first.
                for n, step in enumerate(page.get("steps", []), 1):
                    after = "%s, after %s" % (where, step["click"])
                    buttons = driver.find_elements("css selector", step["click"])
                    if not buttons:
                        problems.append("%s: no %s to press" % (where, step["click"]))
                        break
                    buttons[0].click()
                    # The form posts: wait for the next page to replace this one.
                    WebDriverWait(driver, 20).until(gone(buttons[0]))
                    WebDriverWait(driver, 20).until(
                        lambda d: d.execute_script("return document.readyState") == "complete")
                    step = dict(step, name="%s-%d" % (page_name(page), n))
                    check(driver, axe, width, after, step, problems, shots)
    finally:
        driver.quit()
    for p in problems:
        print("PROBLEM " + p)
    sys.exit(1 if problems else 0)


def gone(element):
    """A wait condition: `element` has left the document. While the next page replaces it,
    chromedriver may answer "node does not belong to the document" (a plain
    WebDriverException) rather than a stale reference: either means it is gone."""
    from selenium.common.exceptions import WebDriverException

    def left(_driver):
        try:
            element.is_enabled()
            return False
        except WebDriverException:
            return True
    return left


if __name__ == "__main__":
    main()
