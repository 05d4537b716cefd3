"""A real browser against the real server: Debian's headless Chromium, driven over the
DevTools protocol from Python (websockets), records every request it makes.

Checks that the landing page renders its map in both languages, that the YASGUI page
runs a query and shows results, and that no request ever leaves 127.0.0.1.
Set TWINNING_KG_SCREENSHOTS=DIR to keep the screenshots for a look.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install -y chromium)"),
]

websockets = pytest.importorskip(
    "websockets", reason="needs the websockets package (pip install -e '.[test]')"
)


class Browser:
    """Headless Chromium with a fresh profile and the DevTools protocol on a free port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self.log = (log_dir / "chromium.log").open("w")
        self.proc = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                # Belt and braces: nothing but localhost can even be resolved.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                f"--user-data-dir={self.profile}",
                f"--remote-debugging-port={self.port}",
                "--remote-debugging-address=127.0.0.1",
                "--window-size=1200,1600",
                "about:blank",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                info = httpx.get(f"http://127.0.0.1:{self.port}/json/version", timeout=2).json()
                self.ws_url = info["webSocketDebuggerUrl"]
                break
            except (httpx.HTTPError, ValueError, KeyError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise AssertionError("chromium did not start its DevTools endpoint") from None
                time.sleep(0.2)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab over a flattened DevTools session; remembers every requested URL."""

    def __init__(self, ws: Any, session: str) -> None:
        self.ws, self.session = ws, session
        self.next_id = 1000
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict[str, Any]] = []
        self.requested: list[str] = []
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws: Any) -> Page:
        await ws.send(
            json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}})
        )
        target = await _reply(ws, 1)
        await ws.send(
            json.dumps(
                {
                    "id": 2,
                    "method": "Target.attachToTarget",
                    "params": {"targetId": target["targetId"], "flatten": True},
                }
            )
        )
        session = (await _reply(ws, 2))["sessionId"]
        page = cls(ws, session)
        for domain in ("Page", "Network", "Runtime"):
            await page.call(f"{domain}.enable")
        return page

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message.get("sessionId") != self.session:
                continue
            if "id" in message and message["id"] in self.pending:
                self.pending.pop(message["id"]).set_result(message)
            elif "method" in message:
                self.events.append(message)
                if message["method"] == "Network.requestWillBeSent":
                    self.requested.append(message["params"]["request"]["url"])

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send(
            json.dumps({"id": self.next_id, "method": method, "params": params, "sessionId": self.session})
        )
        message = await asyncio.wait_for(future, 30)
        if "error" in message:
            raise AssertionError(f"{method}: {message['error']}")
        return message.get("result", {})

    async def goto(self, url: str, timeout: float = 30) -> None:
        self.events.clear()
        await self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, f"{url} did not finish loading"
            await asyncio.sleep(0.05)

    async def js(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            await asyncio.sleep(0.2)

    async def screenshot(self, path: Path) -> Path:
        data = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))
        keep = os.environ.get("TWINNING_KG_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path


async def _reply(ws: Any, message_id: int) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if message.get("id") == message_id:
            if "error" in message:
                raise AssertionError(message["error"])
            return message["result"]


def assert_only_localhost(urls: list[str], server_url: str) -> None:
    host = urlsplit(server_url).netloc
    assert urls, "the browser made requests"
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            continue
        assert parts.scheme == "http" and parts.netloc == host, f"request left localhost: {url}"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


def run_in_page(browser: Browser, scenario) -> Any:  # noqa: ANN001 - async callable(page)
    async def main() -> Any:
        async with websockets.connect(browser.ws_url, max_size=None) as ws:
            page = await Page.open(ws)
            try:
                return await scenario(page)
            finally:
                page.reader.cancel()

    return asyncio.run(main())


def test_landing_page_renders_the_map_in_both_languages(browser, base_url, tmp_path):
    async def scenario(page: Page) -> dict[str, Any]:
        seen = {}
        for lang, heading_word in (("en", "partners"), ("de", "Partner")):
            await page.call("Network.setExtraHTTPHeaders", headers={"Accept-Language": lang})
            await page.goto(base_url + "/")
            seen[lang] = {
                "lang": await page.js("document.documentElement.lang"),
                "markers": await page.js("document.querySelectorAll('svg.map a.marker').length"),
                "outlines": await page.js("document.querySelectorAll('svg.map .land path').length"),
                "map_width": await page.js("document.querySelector('svg.map').getBoundingClientRect().width"),
                "heading": await page.js("document.querySelector('.mapbox h2').textContent"),
                "counts": await page.js("[...document.querySelectorAll('.count')].map(e => e.textContent)"),
                "css": await page.js("getComputedStyle(document.querySelector('header.top')).display"),
            }
            assert heading_word in seen[lang]["heading"]
            await page.screenshot(tmp_path / f"landing-{lang}.png")
        assert_only_localhost(page.requested, base_url)
        return seen

    seen = run_in_page(browser, scenario)
    for lang in ("en", "de"):
        assert seen[lang]["lang"] == lang
        assert seen[lang]["markers"] >= 10, "Kassel and its partners"
        assert seen[lang]["outlines"] >= 20, "country outlines drawn"
        assert seen[lang]["map_width"] > 500, "the map is laid out at a readable size"
        assert seen[lang]["css"] == "flex", "the site stylesheet loaded"
        assert len(seen[lang]["counts"]) == 4


def test_yasgui_runs_a_query_and_shows_results(browser, base_url, tmp_path):
    page_html = httpx.get(base_url + "/sparql", headers={"Accept": "text/html"}, timeout=30)
    if page_html.status_code != 200 or "yasgui" not in page_html.text.lower():
        pytest.skip("the YASGUI page at /sparql is not there yet (SPARQL endpoint engineer)")

    async def scenario(page: Page) -> str:
        await page.goto(base_url + "/sparql")
        await page.wait_for("typeof yasgui !== 'undefined' && !!document.querySelector('.yasqe .CodeMirror')")
        query = (
            "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
            "SELECT ?label WHERE { ?place rdfs:label ?label "
            "FILTER(lang(?label) = 'de' && ?label = 'Florenz'@de) }"
        )
        await page.js(f"yasgui.getTab().getYasqe().setValue({json.dumps(query)})")
        await page.js("document.querySelector('.yasqe_queryButton').click()")
        text = await page.wait_for(
            "(() => { const r = document.querySelector('.yasr'); "
            "return r && r.innerText.includes('Florenz') ? r.innerText : ''; })()"
        )
        await page.screenshot(tmp_path / "yasgui.png")
        assert_only_localhost(page.requested, base_url)
        assert any(urlsplit(u).path == "/sparql" for u in page.requested[1:]), (
            "the query went to our endpoint"
        )
        return text

    assert "Florenz" in run_in_page(browser, scenario)


# Records every Content-Security-Policy violation, from the first script of the page on.
CSP_RECORDER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`));
"""


def test_pages_run_under_the_content_security_policy(browser, base_url, tmp_path):
    """YASGUI, the landing page, a resource page and the audit page work with our CSP: no
    violation reported (by the page's event or the console), and the policy is really in
    force (an injected inline script is blocked and reported). The pages' schema.org JSON-LD
    blocks are there and read by the browser without a violation: a data block is not script."""

    async def scenario(page: Page) -> dict[str, Any]:
        await page.call("Log.enable")
        await page.call("Page.addScriptToEvaluateOnNewDocument", source=CSP_RECORDER)
        seen: dict[str, Any] = {}
        for path in ("/", "/doc/place/kassel", "/audit", "/sparql"):
            await page.goto(base_url + path)
            policies = [
                e["params"]["response"]["headers"].get("content-security-policy")
                for e in page.events
                if e["method"] == "Network.responseReceived" and e["params"]["type"] == "Document"
            ]
            seen[path] = {"policy": policies, "violations": await page.js("window.__csp")}
            # the schema.org block (a data block, which script-src does not govern) as the browser reads it
            seen[path]["json-ld"] = await page.js(
                "[...document.querySelectorAll('script[type=\"application/ld+json\"]')]"
                ".map(s => JSON.parse(s.textContent)['@type'])"
            )
        # YASGUI runs a query under the policy
        await page.wait_for("typeof yasgui !== 'undefined' && !!document.querySelector('.yasqe .CodeMirror')")
        await page.js('yasgui.getTab().getYasqe().setValue("SELECT ?l WHERE { ?p ?x ?l } LIMIT 3")')
        await page.js("document.querySelector('.yasqe_queryButton').click()")
        await page.wait_for("document.querySelectorAll('.yasr table tbody tr').length > 0")
        # drag a column border: the resizer inserts its cursor style sheet (allowed by hash)
        await asyncio.sleep(0.5)  # the grips are placed once the table is laid out
        grip = await page.wait_for(
            "(() => { const g = document.querySelector('.grip-handle .grip-resizable'); if (!g) return null;"
            " const r = g.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;"
            " return document.elementFromPoint(x, y) === g ? {x, y} : null; })()"
        )
        for kind, dx in (("mousePressed", 0), ("mouseMoved", 40)):
            await page.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=grip["x"] + dx,
                y=grip["y"],
                button="left",
                buttons=1,
                clickCount=1,
            )
        seen["dragged"] = await page.js(
            "[...document.querySelectorAll('style')].some(s => s.textContent.startsWith('*{cursor:'))"
        )
        await page.call(
            "Input.dispatchMouseEvent",
            type="mouseReleased",
            x=grip["x"] + 40,
            y=grip["y"],
            button="left",
            clickCount=1,
        )
        seen["after query"] = await page.js("window.__csp")
        console = [
            e["params"]["entry"]["text"]
            for e in page.events
            if e["method"] == "Log.entryAdded" and "Content Security Policy" in e["params"]["entry"]["text"]
        ]
        # positive control: the policy is enforced and the recorder sees a violation
        await page.js(
            "document.head.appendChild(Object.assign(document.createElement('script'), "
            "{textContent: 'window.__ran = true'}))"
        )
        await asyncio.sleep(0.3)
        seen["control"] = {
            "ran": await page.js("window.__ran === true"),
            "violations": await page.js("window.__csp"),
        }
        seen["console"] = console
        await page.screenshot(tmp_path / "yasgui-csp.png")
        return seen

    seen = run_in_page(browser, scenario)
    for path in ("/", "/doc/place/kassel", "/audit", "/sparql"):
        policies = seen[path]["policy"]
        assert policies and all(p and "script-src 'self'" in p for p in policies), path
        assert seen[path]["violations"] == [], (path, seen[path]["violations"])
    assert seen["/"]["json-ld"] == ["Dataset"], seen["/"]
    assert seen["/doc/place/kassel"]["json-ld"] == ["ItemPage"], seen["/doc/place/kassel"]
    assert seen["/sparql"]["json-ld"] == [], seen["/sparql"]
    assert seen["dragged"], "the column resizer ran (its drag style sheet was inserted)"
    assert seen["after query"] == [], seen["after query"]
    assert seen["console"] == [], seen["console"]
    assert seen["control"]["ran"] is False, "an injected inline script ran: no CSP in force"
    assert any("script-src" in v for v in seen["control"]["violations"]), seen["control"]


PHONE_PAGES = (
    "/",
    "/doc/place/kassel",
    "/doc/partnership/kassel--florence",
    "/ontology",
    "/catalog",
    "/.well-known/void",
    "/audit",
    "/sparql",
    "/about",
    "/dumps/",
)


def test_no_page_scrolls_sideways_at_phone_width(browser, base_url, tmp_path):
    """At 390 CSS px (a phone), no page is wider than the screen: wide tables scroll inside
    their own box, long words and media types wrap where they may."""

    async def scenario(page: Page) -> dict[str, Any]:
        await page.call(
            "Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True
        )
        widths = {}
        for lang in ("de", "en"):
            await page.call("Network.setExtraHTTPHeaders", headers={"Accept-Language": lang})
            for path in PHONE_PAGES:
                await page.goto(base_url + path)
                widths[(lang, path)] = await page.js(
                    "[document.documentElement.scrollWidth, window.innerWidth,"
                    " getComputedStyle(document.querySelector('header.top')).display]"
                )
            await page.screenshot(tmp_path / f"phone-{lang}.png")
        return widths

    widths = run_in_page(browser, scenario)
    assert len(widths) == 2 * len(PHONE_PAGES)
    for (lang, path), (scroll, inner, header) in widths.items():
        assert inner == 390, (lang, path, inner)
        assert header != "none", (lang, path, "the site stylesheet loaded")
        assert scroll <= inner, f"{path} ({lang}) is {scroll} px wide at {inner} px"
