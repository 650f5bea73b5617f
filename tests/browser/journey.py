#!/usr/bin/env python3
"""A journalist's browser driven one step at a time by a test: headless Chromium over
WebDriver (the set-up of check.py), taking one JSON command per line on stdin and answering
one JSON line on stdout, so the test can look at its SMTP server between two clicks.

Commands:
  {"open": URL}                     loads a page (a link from a mail, say)
  {"fill": [[CSS, TEXT], ...]}      types into fields, each cleared first
  {"tick": [CSS, ...]}              ticks checkboxes and radio buttons (left ticked if so)
  {"untick": [CSS, ...]}            unticks checkboxes
  {"press": CSS}                    clicks a button and waits for the next page
  {"check": {...}}                  check.py's checks of the page shown (a "page" of its
                                    spec: texts, absent, title, ...; axe-core always)
  {"quit": true}
Each answer: {"url", "text" (what the page shows), "problems" (for "check")} or
{"error": "..."}. Exits 2 when a tool is missing, as check.py does.
"""

import contextlib
import json
import sys

from check import axe_source, browser, check, gone


def shown(driver):
    return {"url": driver.current_url,
            "text": driver.execute_script("return document.body ? document.body.innerText : ''")}


def main():
    axe = axe_source()
    driver = browser()
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            try:
                if "quit" in command:
                    print(json.dumps({"ok": True}), flush=True)
                    break
                if "open" in command:
                    driver.get(command["open"])
                elif "fill" in command:
                    for selector, text in command["fill"]:
                        field = driver.find_element("css selector", selector)
                        field.clear()
                        field.send_keys(text)
                elif "tick" in command or "untick" in command:
                    want = "tick" in command
                    for selector in command.get("tick") or command.get("untick"):
                        box = driver.find_element("css selector", selector)
                        if box.is_selected() != want:
                            # A label may cover a visually styled input: click by script.
                            driver.execute_script("arguments[0].click()", box)
                elif "press" in command:
                    button = driver.find_element("css selector", command["press"])
                    button.click()
                    WebDriverWait(driver, 20).until(gone(button))
                    WebDriverWait(driver, 20).until(
                        lambda d: d.execute_script("return document.readyState") == "complete")
                elif "check" in command:
                    problems = []
                    # check() prints a line per page: the protocol is stdout's alone.
                    with contextlib.redirect_stdout(sys.stderr):
                        check(driver, axe, 1280, driver.current_url, command["check"],
                              problems, None)
                    answer = shown(driver)
                    answer["problems"] = problems
                    print(json.dumps(answer), flush=True)
                    continue
                print(json.dumps(shown(driver)), flush=True)
            except Exception as e:  # the test reads the error and fails with it
                print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
