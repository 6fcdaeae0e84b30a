"""Checks the built docs site in headless Chromium, as a reader's browser shows it.

    python docs/check_site.py [docs/_build/html] [--screenshots docs/_build/screenshots]

Serves the built HTML on 127.0.0.1 (a free port), starts Debian's ``chromium`` headless
with no background networking, and drives it over the Chrome DevTools protocol. For the
index, one guide and the page of ``hk.transform`` it asserts that the navigation, the search
box and the code blocks render, that no console error, uncaught exception or failed load
appears, and that nothing is fetched from outside 127.0.0.1; it saves a PNG screenshot of
each page. It also runs a search and checks that results come back. Exits non-zero, naming
every failure, when any check fails. Needs ``chromium`` and the ``websocket-client`` package
(the ``docs`` extra).
"""

import argparse
import base64
import functools
import http.server
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import websocket

_DOCS = pathlib.Path(__file__).resolve().parent
_TIMEOUT_S = 30

# Each page: its path, and what must be visible on it (CSS selector -> minimum count).
PAGES = {
    "index": ("index.html", {
        "nav.bd-docs-nav a.reference": 10,     # the sidebar's table of contents
        "div.highlight pre": 1,               # the example on the front page
    }),
    "guide": ("getting_started.html", {
        "nav.bd-docs-nav a.reference": 10,
        "div.highlight-python pre": 3,
        "div.highlight-python pre span": 20,  # highlighted, not plain text
    }),
    "transform": ("api/_autosummary/hk_core.transform.html", {
        "nav.bd-docs-nav a.reference": 10,
        'dt.sig[id="hk_core.transform"]': 1,  # the signature
        "div.doctest pre": 1,                 # the >>> example
    }),
}
_SEARCH_BUTTON = "button.search-button-field"
_SEARCH_INPUT = "#pst-search-dialog input[name=q]"

# True when a selector's element takes up space on the screen.
_VISIBLE_COUNT_JS = """
(sel => [...document.querySelectorAll(sel)].filter(e => {
    const r = e.getBoundingClientRect();
    const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
}).length)(%s)
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per file would drown the report
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the browser dropped a request it no longer needed (a navigation)
        super().handle_error(request, client_address)


def serve(root: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serves ``root`` on 127.0.0.1 at a free port, in a daemon thread."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_site: no chromium on PATH (Debian: apt-get install -y chromium)")


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, profile: pathlib.Path):
        self._process = subprocess.Popen(
            [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions",
             "--disable-default-apps", "--hide-scrollbars", "--window-size=1280,900",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._devtools_port(profile / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self._ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=_TIMEOUT_S, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def _devtools_port(self, path: pathlib.Path) -> int:
        deadline = time.monotonic() + _TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                sys.exit(f"check_site: chromium exited with {self._process.returncode}")
            if path.exists() and path.read_text().strip():
                return int(path.read_text().split()[0])
            time.sleep(0.1)
        sys.exit("check_site: chromium did not open its DevTools port")

    def call(self, method: str, **params) -> dict:
        """Sends one command and returns its result; events that arrive are kept."""
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating {expression[:60]!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigates and waits for the load event, then for the theme's scripts to settle."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + _TIMEOUT_S
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}: no load event in {_TIMEOUT_S} s")
            self.events.append(json.loads(self._ws.recv()))
        self.wait_for("document.readyState === 'complete'")

    def wait_for(self, condition: str, timeout_s: float = 10) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.evaluate(f"Boolean({condition})"):
                return True
            time.sleep(0.1)
        return False

    def visible_count(self, selector: str) -> int:
        return self.evaluate(_VISIBLE_COUNT_JS % json.dumps(selector))

    def screenshot(self, path: pathlib.Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def problems(self, origin: str) -> list[str]:
        """Console errors, uncaught exceptions, failed loads and requests off 127.0.0.1."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                text = " ".join(str(a.get("value", a.get("description", "")))
                                for a in params["args"])
                found.append(f"console.{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append("uncaught exception: "
                             f"{details.get('exception', {}).get('description', details['text'])}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                found.append(f"console error ({entry['source']}): {entry['text']} "
                             f"{entry.get('url', '')}".rstrip())
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                found.append(f"failed to load: {params.get('errorText')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith((origin, "data:", "blob:", "about:")):
                    found.append(f"request outside 127.0.0.1: {url}")
        return found

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError, websocket.WebSocketException):
            pass
        self._ws.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def check_page(browser: Browser, origin: str, name: str, path: str,
               expected: dict[str, int], screenshots: pathlib.Path) -> list[str]:
    """Opens one page; returns its failures (an empty list when it passes)."""
    browser.open(origin + path)
    failures = []
    for selector, minimum in expected.items():
        count = browser.visible_count(selector)
        if count < minimum:
            failures.append(f"{selector!r}: {count} visible, expected at least {minimum}")
    if browser.visible_count(_SEARCH_BUTTON) < 1:
        failures.append(f"search box {_SEARCH_BUTTON!r} is not visible")
    # The shot shows the page's first code block (a guide's is below its introduction).
    browser.evaluate("(document.querySelector('div.highlight-python') || "
                     "document.querySelector('div.highlight'))?.scrollIntoView({block: 'center'})")
    browser.screenshot(screenshots / f"{name}.png")
    # The search box opens its dialog, with a text field, when clicked.
    browser.evaluate(f"document.querySelector({json.dumps(_SEARCH_BUTTON)})?.click()")
    if not browser.wait_for(
            f"(document.querySelector({json.dumps(_SEARCH_INPUT)}) || {{}}).offsetHeight > 0",
            timeout_s=5):
        failures.append("clicking the search box did not show a search field")
    failures += browser.problems(origin)
    return [f"{name} ({path}): {f}" for f in failures]


def check_search(browser: Browser, origin: str, screenshots: pathlib.Path) -> list[str]:
    """Searches for ``transform``; the results list must name ``hk_core.transform``."""
    browser.open(origin + "search.html?q=transform")
    found = browser.wait_for(
        "[...document.querySelectorAll('#search-results li a')]"
        ".some(a => a.textContent.includes('hk_core.transform'))", timeout_s=20)
    browser.screenshot(screenshots / "search.png")
    failures = [] if found else ["no result for 'transform' names hk_core.transform"]
    failures += browser.problems(origin)
    return [f"search (search.html?q=transform): {f}" for f in failures]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", nargs="?", default=str(_DOCS / "_build" / "html"),
                        help="the built site (default: docs/_build/html)")
    parser.add_argument("--screenshots", default=None,
                        help="where to write the PNGs (default: <html>/../screenshots)")
    args = parser.parse_args()
    html = pathlib.Path(args.html).resolve()
    if not (html / "index.html").exists():
        sys.exit(f"check_site: no index.html in {html}; build the docs first (BUILD.md)")
    screenshots = pathlib.Path(args.screenshots or html.parent / "screenshots").resolve()
    screenshots.mkdir(parents=True, exist_ok=True)

    server, origin = serve(html)
    failures = []
    with tempfile.TemporaryDirectory(prefix="check_site_") as profile:
        browser = Browser(pathlib.Path(profile))
        try:
            for name, (path, expected) in PAGES.items():
                failures += check_page(browser, origin, name, path, expected, screenshots)
            failures += check_search(browser, origin, screenshots)
        finally:
            browser.close()
            server.shutdown()
    for failure in failures:
        print(f"FAIL {failure}")
    checked = len(PAGES) + 1
    print(f"check_site: {checked} pages checked in headless Chromium, {len(failures)} "
          f"problems; screenshots in {os.path.relpath(screenshots)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
