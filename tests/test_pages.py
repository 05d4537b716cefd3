"""The pages as one site, in-process: every page in the one layout, YASGUI in German too,
dates as each language writes them, a favicon.

Expected values come from the graph (through /sparql) and from the message catalogues the
site says it uses, never from the rendering code under test.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date
from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from twinning_kg.config import DEFAULT_BASE_IRI
from twinning_kg.web.views.sparql import QUERIES_DIR

MESSAGES = QUERIES_DIR.parent / "messages"
MONTHS = {
    "de": [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}
PAGES = (
    "/",
    "/doc/place/kassel",
    "/ontology",
    "/catalog",
    "/.well-known/void",
    "/audit",
    "/sparql",
    "/about",
    "/dumps/",
)


class Outline(HTMLParser):
    """The layout's landmarks of a page: its lang, header, footer, stylesheets, h1."""

    def __init__(self) -> None:
        super().__init__()
        self.lang = ""
        self.landmarks: list[str] = []
        self.stylesheets: list[str] = []
        self.h1 = ""
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag in ("header", "footer", "nav", "main"):
            self.landmarks.append(f"{tag}.{a.get('class') or ''}")
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a.get("href") or "")
        self._in_h1 = self._in_h1 or tag == "h1"

    def handle_endtag(self, tag: str) -> None:
        self._in_h1 = self._in_h1 and tag != "h1"

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1 += data


def outline(client: TestClient, path: str, lang: str) -> Outline:
    response = client.get(path, headers={"Accept": "text/html", "Accept-Language": lang})
    assert response.status_code == 200, (path, response.status_code)
    assert response.headers["content-type"].startswith("text/html"), path
    parsed = Outline()
    parsed.feed(response.text)
    return parsed


def layout(page: Outline) -> list[str]:
    """The base layout's own landmarks: the top header and the footer (pages may add their
    own headers inside `main`)."""
    return [m for m in page.landmarks if m == "header.top" or m.startswith("footer")]


def catalogue(lang: str) -> dict[str, str]:
    return tomllib.loads((MESSAGES / f"{lang}.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", ["de", "en"])
def test_every_page_has_the_one_layout(app: TestClient, lang: str) -> None:
    landing = outline(app, "/", lang)
    assert landing.landmarks and any(href.startswith("/static/site/") for href in landing.stylesheets)
    for path in PAGES:
        page = outline(app, path, lang)
        assert page.lang == lang, path
        assert layout(page) == layout(landing), path
        assert set(landing.stylesheets) <= set(page.stylesheets), path
        assert page.h1.strip(), path


def test_the_sparql_page_speaks_german_too(app: TestClient) -> None:
    for lang in ("de", "en"):
        strings = catalogue(lang)
        html = app.get("/sparql", headers={"Accept": "text/html", "Accept-Language": lang}).text
        assert f"<h1>{strings['sparql_title']}</h1>" in html
        embedded = re.search(r'<script type="application/json" id="examples">(.*?)</script>', html, re.S)
        assert embedded
        names = [example["name"] for example in json.loads(embedded.group(1))]
        stems = sorted(p.stem for p in QUERIES_DIR.glob("*.rq"))
        if lang == "de":
            expected = [strings[f"example_{stem}"] for stem in stems]
        else:  # English titles are the queries' first comment lines
            expected = [
                (QUERIES_DIR / f"{stem}.rq").read_text().splitlines()[0].lstrip("# ") for stem in stems
            ]
        assert names == expected, lang
    de_strings, en_strings = catalogue("de"), catalogue("en")
    assert de_strings["sparql_title"] != en_strings["sparql_title"]


def day_precision_start(app: TestClient) -> tuple[str, date]:
    query = f"""PREFIX tw: <{DEFAULT_BASE_IRI}ontology#>
        SELECT ?p ?d WHERE {{ ?p a tw:Partnership ; tw:startDate ?d ;
          tw:startPrecision <{DEFAULT_BASE_IRI}id/precision/day> ;
          tw:partner <{DEFAULT_BASE_IRI}id/place/kassel> }} ORDER BY ?p LIMIT 1"""
    response = app.get(
        "/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"}
    )
    rows = response.json()["results"]["bindings"]
    assert rows, "a partnership of Kassel's with a start known to the day"
    return rows[0]["p"]["value"], date.fromisoformat(rows[0]["d"]["value"])


def test_dates_follow_the_page_language(app: TestClient) -> None:
    iri, start = day_precision_start(app)
    path = "/doc/" + iri.removeprefix(DEFAULT_BASE_IRI + "id/")
    expected = {
        "de": f"{start.day}. {MONTHS['de'][start.month - 1]} {start.year}",
        "en": f"{start.day} {MONTHS['en'][start.month - 1]} {start.year}",
    }
    for lang, text in expected.items():
        html = app.get(path, headers={"Accept": "text/html", "Accept-Language": lang}).text
        assert text in html, (lang, text)
        # an ISO date may sit in an attribute or in machine-readable data (JSON-LD) only
        visible = re.sub(r"<[^>]+>", " ", re.sub(r"<script\b.*?</script>", " ", html, flags=re.S))
        # ... or inside an IRI shown as text (an event's slug): as a word of its own, never
        assert not re.search(rf"(?<![\w/-]){start.isoformat()}(?![\w-])", visible), lang


def test_favicon(app: TestClient) -> None:
    response = app.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    body = response.content
    assert body[:4] == b"\x00\x00\x01\x00" and int.from_bytes(body[4:6], "little") >= 1, "an ICO file"
    assert response.headers.get("cache-control"), "browsers ask for it on every page: cacheable"
