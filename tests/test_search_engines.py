"""Search engines find the data: schema.org JSON-LD on the pages, the sitemap, robots.txt.

Read like a crawler: robots.txt with Python's robots.txt parser, the sitemap with a real
XML parser and checked against the sitemaps.org 0.9 protocol, every URL it lists
followed, every page's JSON-LD parsed as JSON (the schema.org context is never fetched)
and checked against what the release itself says (its dumps, parsed here with rdflib,
its manifest and its catalog): with and without `--base-url`, in-process, plus one check
on the real server. Negative tests show the checks fire.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser
from xml.etree import ElementTree

import httpx
import pytest
from rdflib import Dataset, Graph, Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS
from starlette.testclient import TestClient

from conftest import ServerProcess
from twinning_kg.web import schema_org
from twinning_kg.web.views import crawlers
from web_support import LOCAL, in_process

DCAT = Namespace("http://www.w3.org/ns/dcat#")
GEO = Namespace("http://www.w3.org/2003/01/geo/wgs84_pos#")
PROV = Namespace("http://www.w3.org/ns/prov#")
SCHEMA = "https://schema.org/"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
W3C_DATETIME = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$")
HTML = {"Accept": "text/html"}
IDENTITY = {"Accept-Encoding": "identity"}


# ------------------------------------------------------------------ what the release says


class Release:
    """The release as a harvester would read it: its N-Quads dump, catalog and manifest."""

    def __init__(self, site: Path) -> None:
        self.dir = site
        self.manifest = json.loads((site / "manifest.json").read_text())
        self.base = self.manifest["base_iri"]
        self.data = Dataset()
        self.data.parse(site / "twinning-kg.nq", format="nquads")
        self.union = Graph()
        for s, p, o, _ in self.data.quads((None, None, None, None)):
            self.union.add((s, p, o))
        self.catalog = Graph().parse(site / "catalog.ttl", format="turtle")
        self.tw = Namespace(self.base + "ontology#")

    def resources(self) -> set[str]:
        """Every IRI under {base}id/ that is a subject (without a fragment)."""
        prefix = self.base + "id/"
        return {
            str(s)
            for s in self.union.subjects()
            if isinstance(s, URIRef) and str(s).startswith(prefix) and "#" not in s and len(s) > len(prefix)
        }

    def instances(self, cls: URIRef) -> set[URIRef]:
        classes = {cls, *self.union.transitive_subjects(RDFS.subClassOf, cls)}
        return {s for c in classes for s in self.union.subjects(RDF.type, c) if isinstance(s, URIRef)}

    def dumps(self) -> dict[str, dict]:
        return {n: m for n, m in self.manifest["files"].items() if n.startswith("twinning-kg.")}


@pytest.fixture(scope="module")
def release(site: Path) -> Release:
    return Release(site)


class JsonLd(HTMLParser):
    """The bodies of `<script type="application/ld+json">` elements, read by an HTML parser."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[str] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in = tag == "script" and ("type", "application/ld+json") in attrs
        if self._in:
            self.blocks.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in = False

    def handle_data(self, data: str) -> None:
        if self._in:
            self.blocks[-1] += data


def json_ld(html: str) -> list[dict[str, Any]]:
    parser = JsonLd()
    parser.feed(html)
    return [json.loads(block) for block in parser.blocks]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def path_of(url: str, public: str) -> str:
    assert url.startswith(public), (url, public)
    return "/" + url[len(public) :]


# ------------------------------------------------------------------ the landing page's Dataset


def dataset_problems(data: dict[str, Any], release: Release, lang: str, public: str) -> list[str]:
    """What is missing or wrong in the landing page's Dataset, against the release."""
    problems = []
    cat, main = release.catalog, URIRef(release.base + "dataset/kassel")

    def expect(key: str, wanted: Any) -> None:
        if data.get(key) != wanted:
            problems.append(f"{key}: {data.get(key)!r} != {wanted!r}")

    expect("@context", "https://schema.org")
    expect("@type", "Dataset")
    expect("@id", public + "dataset/kassel")
    expect("url", public)
    expect("name", next(str(t) for t in cat.objects(main, DCTERMS.title) if t.language == lang))
    expect("description", next(str(t) for t in cat.objects(main, DCTERMS.description) if t.language == lang))
    if not 50 <= len(data.get("description") or "") <= 5000:  # what Google's Dataset documentation asks
        problems.append(f"description of {len(data.get('description') or '')} characters")
    expect("keywords", sorted(str(k) for k in cat.objects(main, DCAT.keyword) if k.language == lang))
    expect("license", "http://creativecommons.org/licenses/by/4.0/")
    expect("isAccessibleForFree", True)
    expect("version", release.manifest["version"])
    for role in ("creator", "publisher"):
        agent = data.get(role) or {}
        if agent.get("@type") != "Organization" or not agent.get("name"):
            problems.append(f"{role}: {agent!r}")
    # the temporal coverage: the earliest start in the data, open-ended
    starts = [str(o) for o in release.union.objects(None, release.tw.startDate)]
    expect("temporalCoverage", f"{min(starts)}/..")
    # the spatial coverage: Kassel, with its Wikidata and GeoNames IRIs from the data, and its position
    kassel = URIRef(release.base + "id/place/kassel")
    place = data.get("spatialCoverage") or {}
    same = {str(o) for o in release.union.objects(kassel, OWL.sameAs)}
    if place.get("@id") != public + "id/place/kassel" or place.get("@type") != "City":
        problems.append(f"spatialCoverage: {place.get('@id')} {place.get('@type')}")
    if not same or not same <= set(place.get("sameAs", [])):
        problems.append(f"spatialCoverage.sameAs lacks {same - set(place.get('sameAs', []))}")
    if not any(s.startswith("http://www.wikidata.org/entity/Q") for s in place.get("sameAs", [])):
        problems.append("spatialCoverage has no Wikidata link")
    position = place.get("geo") or {}
    wanted = (float(release.union.value(kassel, GEO.lat)), float(release.union.value(kassel, GEO.long)))
    if (position.get("latitude"), position.get("longitude")) != wanted:
        problems.append(f"spatialCoverage.geo: {position}")
    catalog = data.get("includedInDataCatalog") or {}
    if catalog.get("@type") != "DataCatalog" or catalog.get("url") != public + "catalog":
        problems.append(f"includedInDataCatalog: {catalog}")
    # one DataDownload per dump the manifest lists, with its size
    downloads = {d.get("contentUrl"): d for d in as_list(data.get("distribution"))}
    wanted_urls = {public + "dumps/" + name for name in release.dumps()}
    if set(downloads) != wanted_urls:
        problems.append(f"distribution: {sorted(set(downloads) ^ wanted_urls)}")
    for name, meta in release.dumps().items():
        d = downloads.get(public + "dumps/" + name, {})
        if d.get("@type") != "DataDownload" or d.get("contentSize") != f"{meta['bytes']} B":
            problems.append(f"{name}: {d}")
        if d.get("encodingFormat") != meta["media_type"] or d.get("sha256") != meta["sha256"]:
            problems.append(f"{name}: {d.get('encodingFormat')} {d.get('sha256')}")
    return problems


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("variant", ["app", "local_app"])
def test_landing_page_carries_the_dataset(variant: str, lang: str, release: Release,
                                          request: pytest.FixtureRequest) -> None:
    client: TestClient = request.getfixturevalue(variant)
    public = LOCAL if variant == "local_app" else release.base
    page = client.get(f"/?lang={lang}", headers=HTML)
    assert page.status_code == 200
    blocks = json_ld(page.text)
    assert len(blocks) == 1, blocks
    assert dataset_problems(blocks[0], release, lang, public) == []


def test_dataset_check_fires(app: TestClient, release: Release) -> None:
    """The checks above fail on a Dataset that is wrong in any of the ways they look for."""
    good = json_ld(app.get("/?lang=en", headers=HTML).text)[0]
    assert dataset_problems(good, release, "en", release.base) == []
    first = good["distribution"][0]
    mutants = {
        "no licence": {**good, "license": None},
        "German text on the English page": {**good, "name": json_ld(app.get("/?lang=de").text)[0]["name"]},
        "closed coverage": {**good, "temporalCoverage": good["temporalCoverage"].replace("..", "2020")},
        "no Wikidata link": {**good, "spatialCoverage": {**good["spatialCoverage"], "sameAs": []}},
        "a dump missing": {**good, "distribution": good["distribution"][1:]},
        "a size off by one": {**good, "distribution": [
            {**first, "contentSize": f"{int(first['contentSize'].split()[0]) + 1} B"},
            *good["distribution"][1:]]},
        "not free": {**good, "isAccessibleForFree": False},
        "no description": {**good, "description": None},
    }
    for why, mutant in mutants.items():
        assert dataset_problems(mutant, release, "en", release.base), why


def test_every_download_answers_with_its_size_and_type(local_app: TestClient, release: Release) -> None:
    """Follow every contentUrl, as Dataset Search would: 200, exactly contentSize bytes, the
    Content-Type encodingFormat states, the SHA-256 stated."""
    data = json_ld(local_app.get("/", headers=HTML).text)[0]
    assert len(data["distribution"]) == len(release.dumps()) > 0
    for download in data["distribution"]:
        answer = local_app.get(path_of(download["contentUrl"], LOCAL), headers=IDENTITY)
        assert answer.status_code == 200, download["contentUrl"]
        assert f"{len(answer.content)} B" == download["contentSize"], download["contentUrl"]
        assert answer.headers["content-type"].split(";")[0] == download["encodingFormat"]
        assert hashlib.sha256(answer.content).hexdigest() == download["sha256"]
        if download["contentUrl"].endswith(".gz"):
            gzip.decompress(answer.content)  # a real gzip file, not transfer-encoded


# ------------------------------------------------------------------ escaping


def test_json_ld_cannot_close_its_script_element() -> None:
    hostile = {"name": "</script><script>alert(1)</script> <!-- & </SCRIPT >"}
    naive = json.dumps(hostile)
    assert "</script" in naive  # what an unescaped block would carry
    text = str(schema_org.script(hostile))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == hostile
    page = f'<html><head><script type="application/ld+json">{text}</script></head></html>'
    assert json_ld(page) == [hostile]
    broken = f'<html><head><script type="application/ld+json">{naive}</script></head></html>'
    with pytest.raises(json.JSONDecodeError):
        json_ld(broken)  # the control: unescaped, the block ends early


# ------------------------------------------------------------------ the sitemap


def sitemap_problems(body: bytes, public: str) -> tuple[list[str], list[str]]:
    """Check a urlset against sitemaps.org 0.9; returns (problems, locations)."""
    problems = []
    if len(body) > crawlers.MAX_BYTES:
        problems.append(f"{len(body)} bytes")
    if not body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>") and not body.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>'
    ):
        problems.append("no UTF-8 XML declaration")
    root = ElementTree.fromstring(body)
    if root.tag != SITEMAP_NS + "urlset":
        problems.append(f"root {root.tag}")
    locations = []
    for url in root:
        if url.tag != SITEMAP_NS + "url":
            problems.append(f"child {url.tag}")
        locs = url.findall(SITEMAP_NS + "loc")
        if len(locs) != 1 or not locs[0].text:
            problems.append(f"{len(locs)} loc in a url")
            continue
        loc = locs[0].text
        parts = urlsplit(loc)
        if parts.scheme not in ("http", "https") or not parts.netloc or not loc.startswith(public):
            problems.append(f"not absolute under {public}: {loc}")
        if len(loc) >= 2048 or not loc.isascii() or " " in loc:
            problems.append(f"not a valid loc: {loc!r}")
        for lastmod in url.findall(SITEMAP_NS + "lastmod"):
            if not W3C_DATETIME.match(lastmod.text or ""):
                problems.append(f"lastmod {lastmod.text}")
        locations.append(loc)
    if len(locations) > crawlers.MAX_URLS:
        problems.append(f"{len(locations)} URLs")
    return problems, locations


def read_sitemap(client: TestClient, public: str) -> list[str]:
    answer = client.get("/sitemap.xml")
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == "application/xml"
    problems, locations = sitemap_problems(answer.content, public)
    assert problems == []
    return locations


def expected_pages(release: Release, public: str) -> set[str]:
    docs = {public + "doc/" + iri[len(release.base + "id/") :] for iri in release.resources()}
    return docs | {public + p for p in ("", "ontology", "catalog", "audit", ".well-known/void", "about")}


@pytest.mark.parametrize("variant", ["app", "local_app"])
def test_sitemap_lists_every_page(variant: str, release: Release, request: pytest.FixtureRequest) -> None:
    """Every resource of the release (computed here from its dump), the ontology, the catalog,
    the audit and the landing page; each URL followed (a crawler's Accept)."""
    client: TestClient = request.getfixturevalue(variant)
    public = LOCAL if variant == "local_app" else release.base
    locations = read_sitemap(client, public)
    assert len(locations) == len(set(locations))
    assert set(locations) == expected_pages(release, public)
    assert len(release.resources()) > 100  # places, partnerships, sources, concepts, claims
    # With --base-url, resource pages are followed with their JSON-LD in the next test; here
    # every URL answers (resources as Turtle, which is quicker to produce than their page).
    for loc in locations:
        accept = "text/turtle" if "/doc/" in loc else "text/html"
        answer = client.get(path_of(loc, public), headers={"Accept": accept})
        assert answer.status_code == 200, loc


def test_sitemap_check_fires() -> None:
    good = crawlers.urlset_xml(["https://example.org/kg/doc/a"], "2026-01-02T03:04:05+00:00")
    assert sitemap_problems(good, "https://example.org/kg/")[0] == []
    for bad, why in (
        (crawlers.urlset_xml(["/doc/a"], None), "relative"),
        (crawlers.urlset_xml(["https://elsewhere.example/doc/a"], None), "another host"),
        (crawlers.urlset_xml(["https://example.org/kg/doc/ä"], None), "not percent-encoded"),
        (crawlers.urlset_xml(["https://example.org/kg/a"], "yesterday"), "lastmod"),
        (crawlers.index_xml(["https://example.org/kg/sitemap-1.xml"], None), "an index, not a urlset"),
    ):
        assert sitemap_problems(bad, "https://example.org/kg/")[0], why


def test_sitemap_splits_within_the_protocol_limits() -> None:
    urls = [f"https://example.org/doc/{i:05d}" for i in range(250)]
    parts = crawlers.split(urls, 100, 10**9)
    assert [len(p) for p in parts] == [100, 100, 50] and sum(parts, []) == urls
    by_bytes = crawlers.split(urls, 10**6, 2_000)
    assert len(by_bytes) > 1 and sum(by_bytes, []) == urls
    for part in by_bytes:
        assert len(crawlers.urlset_xml(part, "2026-01-01")) <= 2_000
    assert crawlers.split(urls[:1], 1, 10) == [urls[:1]]  # one URL always fits somewhere


def test_large_sitemap_becomes_an_index(site: Path, app: TestClient, release: Release,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the per-file limit (lowered here to 100 URLs), /sitemap.xml is a sitemap index
    whose parts hold every URL once, each within the limit; the parts answer, others 404.
    A single sitemap has no parts."""
    assert ElementTree.fromstring(app.get("/sitemap.xml").content).tag == SITEMAP_NS + "urlset"
    assert app.get("/sitemap-1.xml").status_code == 404
    monkeypatch.setattr(crawlers, "MAX_URLS", 100)  # a fresh app: its sitemap is computed anew
    with in_process(site, base_url=LOCAL) as client:
        root = ElementTree.fromstring(client.get("/sitemap.xml").content)
        assert root.tag == SITEMAP_NS + "sitemapindex"
        parts = [s.findtext(SITEMAP_NS + "loc") for s in root.findall(SITEMAP_NS + "sitemap")]
        wanted = expected_pages(release, LOCAL)
        assert len(parts) == -(-len(wanted) // 100) > 1
        seen: list[str] = []
        for n, loc in enumerate(parts, start=1):
            assert loc == f"{LOCAL}sitemap-{n}.xml"
            answer = client.get(path_of(loc, LOCAL))
            problems, locations = sitemap_problems(answer.content, LOCAL)
            assert answer.status_code == 200 and problems == [] and 0 < len(locations) <= 100
            seen += locations
        assert sorted(seen) == sorted(wanted)
        assert client.get(f"/sitemap-{len(parts) + 1}.xml").status_code == 404
        assert client.get("/sitemap-0.xml").status_code == 404


# ------------------------------------------------------------------ every resource page's markup


def resource_problems(data: dict[str, Any], iri: URIRef, release: Release, public: str) -> list[str]:
    """What is missing or wrong in a resource page's JSON-LD, against the dump."""
    g, tw = release.union, release.tw
    problems = []
    main = data.get("mainEntity") or {}
    doc = public + "doc/" + str(iri)[len(release.base + "id/") :]
    if data.get("@context") != "https://schema.org" or data.get("@type") != "ItemPage":
        problems.append(f"page: {data.get('@context')} {data.get('@type')}")
    if data.get("url") != doc or main.get("@id") != public + str(iri)[len(release.base) :]:
        problems.append(f"url {data.get('url')} / @id {main.get('@id')}")
    if not main.get("name") or not main.get("@type"):
        problems.append(f"no name or type: {main}")
    types = set(as_list(main.get("@type")))
    direct = set(g.objects(iri, RDF.type))
    # the schema.org type the ontology gives the resource's own class
    mapped = {str(c)[len(SCHEMA) :] for t in direct for c in g.objects(t, RDFS.subClassOf)
              if str(c).startswith(SCHEMA)}
    if mapped and not types & mapped:
        problems.append(f"type {types}, the ontology says {mapped}")
    if iri in release.instances(tw.Place):
        same = {str(o) for o in g.objects(iri, OWL.sameAs)}
        if set(main.get("sameAs", [])) != same:
            problems.append(f"sameAs {main.get('sameAs')} != {same}")
        lat, lon = g.value(iri, GEO.lat), g.value(iri, GEO.long)
        position = main.get("geo", {})
        got = (position.get("latitude"), position.get("longitude"))
        if lat is not None and got != (float(lat), float(lon)):
            problems.append(f"geo {main.get('geo')}")
        if not types & {"City", "Place", "AdministrativeArea"}:
            problems.append(f"a place typed {types}")
    if iri in release.instances(tw.Partnership):
        partners = {public + str(p)[len(release.base) :] for p in g.objects(iri, tw.partner)}
        if types != {"Intangible"} or {m.get("@id") for m in data.get("mentions", [])} != partners:
            problems.append(f"partnership: {types} {data.get('mentions')}")
        start, end = g.value(iri, tw.startDate), g.value(iri, tw.endDate)
        wanted = f"{start}/{end if end is not None else '..'}" if start is not None else None
        if data.get("temporalCoverage") != wanted:
            problems.append(f"temporalCoverage {data.get('temporalCoverage')} != {wanted}")
    if iri in release.instances(tw.Source):
        url = g.value(iri, URIRef(SCHEMA + "url"))
        if "CreativeWork" not in types or main.get("url") != (str(url) if url else None):
            problems.append(f"source: {types} {main.get('url')}")
    if SKOS.Concept in direct:
        scheme = public + str(g.value(iri, SKOS.inScheme))[len(release.base) :]
        if types != {"DefinedTerm"} or main.get("inDefinedTermSet", {}).get("@id") != scheme:
            problems.append(f"concept: {types} {main.get('inDefinedTermSet')}")
    cited = {public + str(s)[len(release.base) :] for p in (PROV.wasDerivedFrom, DCTERMS.source,
             tw.startSource, tw.statusSource, tw.kindSource) for s in g.objects(iri, p)}
    if {c.get("@id") for c in data.get("citation", [])} != cited:
        problems.append(f"citation {data.get('citation')} != {cited}")
    return problems


def test_every_resource_page_carries_schema_org(local_app: TestClient, release: Release) -> None:
    """Every /doc page the sitemap lists, fetched as a browser or crawler does: one JSON-LD
    block, about the resource, with what its kind has (checked against the dump)."""
    docs = [loc for loc in read_sitemap(local_app, LOCAL) if "/doc/" in loc]
    assert len(docs) == len(release.resources())
    kinds = {"place": 0, "partnership": 0, "source": 0}
    failures = {}
    for loc in docs:
        answer = local_app.get(path_of(loc, LOCAL), headers=HTML)
        assert answer.status_code == 200, loc
        blocks = json_ld(answer.text)
        assert len(blocks) == 1, loc
        iri = URIRef(release.base + "id/" + loc[len(LOCAL + "doc/") :])
        problems = resource_problems(blocks[0], iri, release, LOCAL)
        if problems:
            failures[loc] = problems
        for kind in kinds:
            kinds[kind] += f"/doc/{kind}/" in loc
    assert failures == {}
    assert all(kinds.values()), kinds


def test_resource_check_fires(local_app: TestClient, release: Release) -> None:
    def page(path: str) -> dict[str, Any]:
        return json_ld(local_app.get(path, headers=HTML).text)[0]

    base = release.base + "id/"
    florence = URIRef(base + "partnership/kassel--florence")
    place, partnership = page("/doc/place/kassel"), page("/doc/partnership/kassel--florence")
    source_iri = next(iter(sorted(release.instances(release.tw.Source))))
    source = page("/doc/" + str(source_iri)[len(base) :])
    cases = [
        (place, URIRef(base + "place/kassel"), {"mainEntity": {**place["mainEntity"], "sameAs": []}}),
        (place, URIRef(base + "place/kassel"), {"mainEntity": {**place["mainEntity"], "geo": {}}}),
        (place, URIRef(base + "place/kassel"), {"mainEntity": {**place["mainEntity"], "@type": "Thing"}}),
        (partnership, florence, {"@type": "WebPage"}),
        (partnership, florence, {"mentions": partnership["mentions"][:1]}),
        (partnership, florence, {"temporalCoverage": "1952/2000"}),
        (partnership, florence, {"citation": []}),
        (source, source_iri, {"mainEntity": {**source["mainEntity"], "url": "https://example.org/"}}),
    ]
    for good, iri, change in cases:
        assert resource_problems(good, iri, release, LOCAL) == []
        assert resource_problems({**good, **change}, iri, release, LOCAL), change


# ------------------------------------------------------------------ robots.txt


@pytest.mark.parametrize("variant", ["app", "local_app"])
def test_robots_txt_names_the_sitemap_and_keeps_crawlers_off_sparql(
    variant: str, release: Release, request: pytest.FixtureRequest
) -> None:
    client: TestClient = request.getfixturevalue(variant)
    public = LOCAL if variant == "local_app" else release.base
    answer = client.get("/robots.txt")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    robots = RobotFileParser()
    robots.parse(answer.text.splitlines())
    assert robots.site_maps() == [public + "sitemap.xml"]
    assert "Disallow: /sparql" in answer.text.splitlines()
    host = "http://testserver"  # the rules are paths on the host that serves robots.txt
    for blocked in ("/sparql", "/sparql/", "/sparql?query=SELECT%20*%20%7B%3Fs%20%3Fp%20%3Fo%7D"):
        assert not robots.can_fetch("Googlebot", host + blocked), blocked
    for allowed in ("/", "/doc/place/kassel", "/catalog", "/sitemap.xml", "/dumps/twinning-kg.ttl"):
        assert robots.can_fetch("Googlebot", host + allowed), allowed


def test_robots_txt_under_a_base_url_with_a_path(site: Path) -> None:
    """Behind a proxy at https://example.org/kg/ the endpoint's public path is /kg/sparql."""
    with in_process(site, base_url="https://example.org/kg/") as client:
        robots = RobotFileParser()
        robots.parse(client.get("/robots.txt").text.splitlines())
    assert robots.site_maps() == ["https://example.org/kg/sitemap.xml"]
    assert not robots.can_fetch("*", "https://example.org/kg/sparql?query=ASK%7B%7D")
    assert robots.can_fetch("*", "https://example.org/kg/doc/place/kassel")


# ------------------------------------------------------------------ the real server


@pytest.fixture(scope="module")
def http(local_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=60) as client:
        yield client


def test_real_server_serves_robots_sitemap_and_markup(http: httpx.Client, local_server: ServerProcess,
                                                      release: Release) -> None:
    public = local_server.url + "/"
    robots = RobotFileParser()
    robots.parse(http.get("/robots.txt").text.splitlines())
    assert robots.site_maps() == [public + "sitemap.xml"]
    answer = http.get(urlsplit(robots.site_maps()[0]).path)
    problems, locations = sitemap_problems(answer.content, public)
    assert answer.status_code == 200 and problems == []
    assert set(locations) == expected_pages(release, public)
    landing = json_ld(http.get("/", headers={**HTML, "Accept-Language": "de"}).text)
    assert len(landing) == 1 and dataset_problems(landing[0], release, "de", public) == []
    for download in landing[0]["distribution"]:
        got = http.get(path_of(download["contentUrl"], public), headers=IDENTITY)
        assert got.status_code == 200 and f"{len(got.content)} B" == download["contentSize"]
        assert got.headers["content-type"].split(";")[0] == download["encodingFormat"]
    page = http.get("/doc/place/kassel", headers=HTML)
    blocks = json_ld(page.text)
    assert resource_problems(blocks[0], URIRef(release.base + "id/place/kassel"), release, public) == []
    assert "script-src 'self'" in page.headers["content-security-policy"]  # the CSP stays strict


# ------------------------------------------------------------------ the world release


def test_world_release_sitemap_and_dataset(world: Path) -> None:
    """The world import: every resource once in the sitemap (an index of parts only beyond
    50,000 URLs), each part within the protocol's limits; a sample of its pages carries
    schema.org; the landing page's Dataset lists every dump."""
    manifest = json.loads((world / "manifest.json").read_text())
    base = manifest["base_iri"]
    subject = re.compile(r"^<(" + re.escape(base) + r"id/[^>#]+)> ")
    with (world / "twinning-kg.nt").open(encoding="utf-8") as lines:
        resources = {m.group(1) for line in lines if (m := subject.match(line))}
    wanted = {LOCAL + "doc/" + iri[len(base + "id/") :] for iri in resources}
    assert len(wanted) > 10_000
    with in_process(world, base_url=LOCAL) as client:
        first = client.get("/sitemap.xml").content
        root = ElementTree.fromstring(first)
        if len(wanted) + len(crawlers.PAGES) > crawlers.MAX_URLS:
            assert root.tag == SITEMAP_NS + "sitemapindex"
            bodies = [client.get(path_of(s.findtext(SITEMAP_NS + "loc"), LOCAL)).content for s in root]
        else:
            bodies = [first]
        locations: list[str] = []
        for body in bodies:
            problems, found = sitemap_problems(body, LOCAL)
            assert problems == []
            locations += found
        assert len(locations) == len(set(locations))
        assert {loc for loc in locations if "/doc/" in loc} == wanted
        docs = sorted(wanted)
        for loc in docs[:: len(docs) // 20]:
            blocks = json_ld(client.get(path_of(loc, LOCAL), headers=HTML).text)
            assert len(blocks) == 1 and blocks[0]["mainEntity"]["@id"].startswith(LOCAL + "id/"), loc
        dataset = json_ld(client.get("/", headers=HTML).text)[0]
        dumps = {n for n in manifest["files"] if n.startswith("twinning-kg.")}
        assert {d["contentUrl"] for d in dataset["distribution"]} == {LOCAL + "dumps/" + n for n in dumps}


@pytest.mark.parametrize("lang", ["en", "de"])
def test_ontology_page_is_a_defined_term_set(local_app: TestClient, release: Release, lang: str) -> None:
    """Every class and property of the vocabulary is a DefinedTerm of the page's set, named
    by its label in the page's language."""
    blocks = json_ld(local_app.get(f"/ontology?lang={lang}", headers=HTML).text)
    assert len(blocks) == 1
    data = blocks[0]
    assert data["@type"] == "DefinedTermSet" and data["@id"] == LOCAL + "ontology"
    ns = str(release.tw)
    declared = {
        s
        for kind in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty)
        for s in release.union.subjects(RDF.type, kind)
        if str(s).startswith(ns)
    }
    terms = {t["@id"]: t for t in data["hasDefinedTerm"]}
    assert len(declared) > 20
    for term in declared:
        found = terms.get(LOCAL + str(term)[len(release.base) :])
        assert found is not None, term
        label = next(str(o) for o in release.union.objects(term, RDFS.label) if o.language == lang)
        assert found["@type"] == "DefinedTerm" and found["name"] == label, (term, found)


class Alternates(HTMLParser):
    """`<link rel="alternate" hreflang="…" href="…">` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "link" and a.get("rel") == "alternate" and a.get("hreflang") and a.get("href"):
            self.found[a["hreflang"]] = a["href"]


@pytest.mark.parametrize("variant", ["app", "local_app"])
@pytest.mark.parametrize("path", ["/", "/doc/place/kassel", "/ontology", "/catalog"])
def test_pages_name_their_language_versions(variant: str, path: str, release: Release,
                                            request: pytest.FixtureRequest) -> None:
    """Each page names its German and English versions and the negotiated one (x-default)
    by absolute URL, so a search engine indexes both languages; each answers in its language."""
    client: TestClient = request.getfixturevalue(variant)
    public = LOCAL if variant == "local_app" else release.base
    parser = Alternates()
    parser.feed(client.get(path, headers=HTML).text)
    here = public + path.lstrip("/")
    assert parser.found == {"de": here + "?lang=de", "en": here + "?lang=en", "x-default": here}
    for code, href in parser.found.items():
        answer = client.get(path_of(href, public), headers=HTML)
        assert answer.status_code == 200
        assert answer.headers["content-language"] == (code if code != "x-default" else "en")
    missing, nothing = client.get("/doc/place/nowhere", headers=HTML), Alternates()
    nothing.feed(missing.text)
    assert missing.status_code == 404 and nothing.found == {}  # an error page has no versions
