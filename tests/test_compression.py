"""Content codings: one reading of Accept-Encoding, HEAD saying what GET sends, dumps from
their gzip twins, and the same gzip bytes from both paths to a query's answer.

RFC 9110 §12.5.3 (Accept-Encoding: `q=0` refuses, `*` stands for codings not listed),
§8.4.1.3 (`x-gzip` is gzip), §9.3.2 (HEAD: the header fields GET would send), §8.8.3 (a
strong ETag names one sequence of bytes). The protocol checks run against the real server
with the bytes as they travel (`iter_raw`: no decoding by the client).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from conftest import ServerProcess
from twinning_kg.query.negotiation import accepts_coding
from twinning_kg.web.compression import GZIP_THREAD_MIN

QUERY = "SELECT * { ?s ?p ?o } ORDER BY ?s ?p ?o LIMIT 40"  # over 500 bytes in every format
BIG_QUERY = "SELECT * { ?s ?p ?o } ORDER BY ?s ?p ?o LIMIT 1500"  # over 128 KiB as JSON
FIELDS = (
    "content-type", "content-length", "content-encoding", "etag", "vary", "last-modified", "cache-control"
)


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        (None, False),
        ("", False),
        ("identity", False),
        ("br", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),  # listed: its own weight decides, not the wildcard's
        ("*", True),
        ("br, *;q=0.1", True),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("gzip;q=banana", False),  # an unreadable weight: the element is ignored
        ("gzip;q=2", False),
        ("gzip;q=0, gzip", True),  # listed twice: the better weight
    ],
)
def test_accept_encoding_is_read_by_its_weights(header: str | None, gzip_ok: bool) -> None:
    assert accepts_coding(header, "gzip") is gzip_ok


def _raw(
    client: httpx.Client, method: str, url: str, headers: dict[str, str]
) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (content coding not undone)."""
    with client.stream(method, url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


PATHS = [
    "/",
    "/favicon.ico",
    "/catalog",
    "/sitemap.xml",
    "/static/site/site.css",
    "/static/yasgui/yasgui.min.js",  # streamed: chunked on GET, no Content-Length either way
    "/dumps/twinning-kg.ttl",
    "/dumps/twinning-kg.nt.gz",
    "/sparql?query=" + quote(QUERY),
    "/no/such/page",
]


@pytest.mark.parametrize("encoding", ["gzip", "identity", "gzip;q=0", "*"])
@pytest.mark.parametrize("path", PATHS)
def test_head_sends_the_header_fields_of_get(http: httpx.Client, path: str, encoding: str) -> None:
    asked = {"Accept-Encoding": encoding}
    got, body = _raw(http, "GET", path, asked)
    head, nothing = _raw(http, "HEAD", path, asked)
    assert head.status_code == got.status_code and nothing == b""
    for name in FIELDS:
        assert head.headers.get(name) == got.headers.get(name), (name, head.headers, got.headers)
    if "content-length" in got.headers:
        assert int(head.headers["content-length"]) == len(body)
    coded = got.headers.get("content-encoding") == "gzip"
    assert coded == (encoding in ("gzip", "*") and len(gzip.decompress(body) if coded else body) >= 500
                     and not path.endswith(".gz") and got.status_code == 200), got.headers


def test_head_in_process_too(app: TestClient) -> None:
    """The in-process client (pages' tests) sees the same: the file responses were the odd ones."""
    for path in ("/favicon.ico", "/static/site/site.css", "/dumps/twinning-kg.ttl"):
        got = app.get(path, headers={"Accept-Encoding": "gzip"})
        head = app.head(path, headers={"Accept-Encoding": "gzip"})
        assert got.headers["content-encoding"] == head.headers["content-encoding"] == "gzip", path
        assert got.headers["etag"] == head.headers["etag"] and got.headers["etag"].endswith('-gzip"')
        assert got.headers["content-length"] == head.headers["content-length"], path


def test_a_dump_travels_as_its_gzip_twin(http: httpx.Client, site: Path) -> None:
    name = "twinning-kg.nq"
    plain, plain_body = _raw(http, "GET", f"/dumps/{name}", {"Accept-Encoding": "identity"})
    coded, coded_body = _raw(http, "GET", f"/dumps/{name}", {"Accept-Encoding": "gzip"})
    assert plain_body == (site / name).read_bytes()
    assert coded_body == (site / f"{name}.gz").read_bytes()  # the build's bytes, no compression here
    assert gzip.decompress(coded_body) == plain_body
    assert coded.headers["content-type"] == plain.headers["content-type"]
    assert coded.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert int(coded.headers["content-length"]) == len(coded_body)
    assert coded.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    for response in (plain, coded):
        assert "Accept-Encoding" in response.headers["vary"]
    # Validators are per representation: each one's ETag revalidates itself only.
    gzip_ok = {"Accept-Encoding": "gzip"}
    again = http.get(f"/dumps/{name}", headers={**gzip_ok, "If-None-Match": coded.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == coded.headers["etag"]
    other = http.get(f"/dumps/{name}", headers={**gzip_ok, "If-None-Match": plain.headers["etag"]})
    assert other.status_code == 200
    refused = http.get(f"/dumps/{name}", headers={"Accept-Encoding": "gzip;q=0, *"})
    assert "content-encoding" not in refused.headers and refused.content == plain_body
    ranged, part = _raw(http, "GET", f"/dumps/{name}", {"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
    assert ranged.status_code == 206 and part == coded_body[:100]  # ranges over the coded bytes


STATIC = Path(__file__).resolve().parents[1] / "src" / "twinning_kg" / "web" / "static"


@pytest.mark.parametrize("asset", ["yasgui/yasgui.min.js", "site/site.css", "site/countries-110m.json"])
def test_a_static_asset_travels_as_its_kept_gzip_form(http: httpx.Client, asset: str) -> None:
    stored = (STATIC / asset).read_bytes()
    url = f"/static/{asset}"
    plain, plain_body = _raw(http, "GET", url, {"Accept-Encoding": "identity"})
    first, first_body = _raw(http, "GET", url, {"Accept-Encoding": "gzip"})
    again, again_body = _raw(http, "GET", url, {"Accept-Encoding": "gzip"})
    assert plain_body == stored and "content-encoding" not in plain.headers
    assert first.headers["content-encoding"] == again.headers["content-encoding"] == "gzip"
    assert gzip.decompress(first_body) == stored and first_body == again_body
    assert int(first.headers["content-length"]) == len(first_body)  # known before it is sent
    assert first.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    assert first.headers["content-type"] == plain.headers["content-type"]
    assert "Accept-Encoding" in first.headers["vary"] and "Accept-Encoding" in plain.headers["vary"]
    assert "accept-ranges" not in first.headers
    for etag in (first.headers["etag"], plain.headers["etag"]):
        revalidated = http.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert revalidated.status_code == (304 if etag == first.headers["etag"] else 200)
    ranged, part = _raw(http, "GET", url, {"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
    assert ranged.status_code == 206 and part == stored[:100]  # ranges over the file as stored
    refused = http.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers and refused.content == stored


@pytest.mark.parametrize("query", [QUERY, BIG_QUERY])
def test_both_paths_to_a_query_send_the_same_gzip_bytes(http: httpx.Client, query: str) -> None:
    """A plain GET takes the lean path, one with Origin the general (CORS) stack: one
    strong ETag, so one sequence of bytes (the big answer is compressed in a thread)."""
    url = "/sparql?query=" + quote(query)
    asked = {"Accept": "application/sparql-results+json", "Accept-Encoding": "gzip"}
    lean, lean_body = _raw(http, "GET", url, asked)
    general, general_body = _raw(http, "GET", url, {**asked, "Origin": "https://example.org"})
    hit, hit_body = _raw(http, "GET", url, asked)  # the cache's kept gzip form
    assert general.headers.get("access-control-allow-origin") == "*"  # it did go the CORS way
    assert (lean.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert lean.headers["content-encoding"] == general.headers["content-encoding"] == "gzip"
    assert lean.headers["etag"] == general.headers["etag"] == hit.headers["etag"]
    assert lean_body == general_body == hit_body
    assert (len(gzip.decompress(lean_body)) > GZIP_THREAD_MIN) == (query == BIG_QUERY)
    assert int(hit.headers["content-length"]) == len(hit_body)
    revalidated = http.get(url, headers={**asked, "If-None-Match": hit.headers["etag"]})
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["etag"] == hit.headers["etag"]
    assert "content-encoding" not in revalidated.headers and "content-length" not in revalidated.headers
    for refused in ("gzip;q=0", "identity", "br"):
        for extra in ({}, {"Origin": "https://example.org"}):
            response = http.get(url, headers={**asked, **extra, "Accept-Encoding": refused})
            assert "content-encoding" not in response.headers, (refused, extra)
            assert "Accept-Encoding" in response.headers["vary"], (refused, extra)


# ------------------------------------------------------------------ one answer, whichever path


SAME_CASES = [
    ({"Accept": "application/sparql-results+json"}, "ASK {}"),
    ({"Accept": "application/sparql-results+json", "Accept-Encoding": "gzip"}, QUERY),
    ({"Accept": "text/csv", "Accept-Encoding": "identity"}, QUERY),
    ({"Accept": "text/turtle", "Accept-Encoding": "gzip"}, "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 30"),
    ({"Accept": "image/png"}, QUERY),  # 406
    ({}, "SELECT * WHERE { ?s ?p }"),  # 400
]


@pytest.mark.parametrize(("asked", "query"), SAME_CASES)
def test_the_lean_path_answers_with_the_general_stacks_header_fields(
    http: httpx.Client, asked: dict[str, str], query: str
) -> None:
    """A GET with `Content-Length: 0` takes the general stack (the lean path takes no body),
    without being a CORS request: the two answers must agree field for field, `Vary`
    included, or a shared cache keyed by it could hand one client's answer to another."""
    url = "/sparql?query=" + quote(query)
    http.get(url, headers=asked)  # both paths then see the same cache state
    lean, lean_body = _raw(http, "GET", url, asked)
    general, general_body = _raw(http, "GET", url, {**asked, "Content-Length": "0"})
    ignore = {"date", "server", "x-cache"}
    assert {k: v for k, v in lean.headers.items() if k not in ignore} == {
        k: v for k, v in general.headers.items() if k not in ignore
    }
    assert lean.status_code == general.status_code and lean_body == general_body


def test_a_post_answer_tags_its_gzip_bytes_as_get_does(http: httpx.Client) -> None:
    """POST has no 304, but its answer carries the query's ETag: gzip-coded, the tag must
    be the gzip one, as on GET, or one strong validator would name two byte sequences."""
    asked = {"Accept": "application/sparql-results+json", "Accept-Encoding": "gzip"}
    got, got_body = _raw(http, "GET", "/sparql?query=" + quote(QUERY), asked)
    plain = http.get("/sparql?query=" + quote(QUERY), headers={**asked, "Accept-Encoding": "identity"})
    form_type = {**asked, "Content-Type": "application/x-www-form-urlencoded"}
    encoded = f"query={quote(QUERY)}".encode()
    with http.stream("POST", "/sparql", headers=form_type, content=encoded) as response:
        form, form_body = response, b"".join(response.iter_raw())
    direct_type = {**asked, "Content-Type": "application/sparql-query"}
    with http.stream("POST", "/sparql", headers=direct_type, content=QUERY.encode()) as response:
        direct, direct_body = response, b"".join(response.iter_raw())
    for answer, body in ((form, form_body), (direct, direct_body)):
        assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
        assert answer.headers["etag"] == got.headers["etag"] != plain.headers["etag"]
        assert body == got_body
    unencoded = http.post("/sparql", data={"query": QUERY}, headers={**asked, "Accept-Encoding": "identity"})
    assert unencoded.headers["etag"] == plain.headers["etag"]
