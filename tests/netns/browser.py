"""A headless Chromium (Debian's, through chromium-driver and Selenium) driven over
stdin/stdout, one JSON command per line. Run inside a test host's namespace with
`ip netns exec`, so that the browser reaches what listens on that host's loopback.

Commands: open URL; texts CSS (the text of each match); attr CSS NAME; click CSS;
fill CSS VALUE; script JS; screenshot PATH; quit. Each answer is {"ok": ..., "value"|"error": ...}.
"""

from __future__ import annotations

import json
import sys

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main() -> None:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1240,560", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    # Debian's driver: never Selenium Manager's download (nothing is reachable here)
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    print(json.dumps({"ok": True, "value": "ready"}), flush=True)
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            try:
                value = run(driver, cmd)
                out = {"ok": True, "value": value}
            except Exception as e:  # answer, so the test can say what failed
                out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            print(json.dumps(out), flush=True)
            if cmd["op"] == "quit":
                break
    finally:
        driver.quit()


def run(driver, cmd):  # type: ignore[no-untyped-def]
    op = cmd["op"]
    if op == "open":
        driver.get(cmd["url"])
        return driver.title
    # the page redraws itself every 2 s: read in one script, so nothing goes stale midway
    if op == "texts":
        return driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)",
            cmd["css"])
    if op == "attr":
        return driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), "
            "e => e.getAttribute(arguments[1]))", cmd["css"], cmd["name"])
    if op == "click":  # a real click; again if a redraw replaced the button meanwhile
        for attempt in range(5):
            try:
                driver.find_element(By.CSS_SELECTOR, cmd["css"]).click()
                return attempt
            except StaleElementReferenceException:
                continue
        raise RuntimeError(f"{cmd['css']} kept being redrawn")
    if op == "fill":  # the page keeps a focused input while it redraws
        e = driver.find_element(By.CSS_SELECTOR, cmd["css"])
        e.clear()
        e.send_keys(cmd["value"])
        return None
    if op == "screenshot":
        return driver.save_screenshot(cmd["path"])
    if op == "script":
        return driver.execute_script(cmd["js"])
    if op == "quit":
        return None
    raise ValueError(f"unknown op {op}")


if __name__ == "__main__":
    main()
