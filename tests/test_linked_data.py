"""Linked data, in-process over the real release and query workers: 303s, documents in
every syntax, languages, the ontology document and the landing page (the negotiation
table is test_negotiation.py, the IRI space under `--base-url` test_iri_space.py).

Expected values come from the graph itself through `/sparql`, never from the pages'
own code, so a page that drops a partner or miscounts fails here.
"""

from __future__ import annotations

import json
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import FOAF, OWL, RDF, RDFS
from starlette.testclient import TestClient

from twinning_kg.config import Settings
from twinning_kg.query.engine import QueryError
from twinning_kg.release.reader import Release
from twinning_kg.web.app import create_app
from twinning_kg.web.i18n import negotiate_language

RDF_FORMATS = {
    "ttl": ("text/turtle", "turtle"),
    "nt": ("application/n-triples", "nt"),
    "jsonld": ("application/ld+json", "json-ld"),
    "rdf": ("application/rdf+xml", "xml"),
}
GEO = "http://www.w3.org/2003/01/geo/wgs84_pos#"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def base_iri(site: Path) -> str:
    return json.loads((site / "manifest.json").read_text())["base_iri"]


@pytest.fixture(scope="module")
def client(app: TestClient) -> TestClient:
    return app


def sparql(client: TestClient, query: str) -> list[dict]:
    r = client.post("/sparql", data={"query": query}, headers={"Accept": "application/sparql-results+json"})
    assert r.status_code == 200, r.text
    return r.json()["results"]["bindings"]


def tw(base_iri: str, term: str) -> str:
    return f"{base_iri}ontology#{term}"


@pytest.fixture(scope="module")
def places(client: TestClient, base_iri: str) -> list[str]:
    rows = sparql(
        client, f"SELECT DISTINCT ?x WHERE {{ ?x a/<{RDFS.subClassOf}>* <{tw(base_iri, 'Place')}> }}"
    )
    found = sorted(r["x"]["value"] for r in rows)
    assert len(found) >= 10, "the Kassel graph has Kassel and at least nine partners"
    return found


@pytest.fixture(scope="module")
def partnerships(client: TestClient, base_iri: str) -> list[str]:
    rows = sparql(client, f"SELECT DISTINCT ?x WHERE {{ ?x a <{tw(base_iri, 'Partnership')}> }}")
    found = sorted(r["x"]["value"] for r in rows)
    assert len(found) >= 9
    return found


def path_of(iri: str, base_iri: str) -> str:
    assert iri.startswith(base_iri + "id/"), iri
    return iri[len(base_iri) :]


def kassel(base_iri: str) -> str:
    return f"{base_iri}id/place/kassel"


# ---------------------------------------------------------------- 303 and documents


def test_every_place_and_partnership_redirects_303(client, base_iri, places, partnerships):
    for iri in places + partnerships:
        path = path_of(iri, base_iri)
        r = client.get("/" + path, follow_redirects=False)
        assert r.status_code == 303, (iri, r.status_code)
        assert "accept" in r.headers.get("vary", "").lower()
        location = r.headers["location"]
        assert urlsplit(location).path == "/doc/" + path[len("id/") :], location
        assert "?" not in location, "no format given, none appended"
        doc = client.get(location, headers={"Accept": "text/turtle"})
        assert doc.status_code == 200, (location, doc.text[:200])


def test_redirect_keeps_requested_format(client, base_iri):
    r = client.get("/id/place/kassel", params={"format": "ttl"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/doc/place/kassel?format=ttl"
    followed = client.get(r.headers["location"], headers={"Accept": "text/html"})
    assert followed.headers["content-type"].startswith("text/turtle")


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("?lang=de", "/doc/place/kassel?lang=de"),
        ("?lang=de&format=html", "/doc/place/kassel?format=html&lang=de"),
        ("?format=nt&lang=en&other=x", "/doc/place/kassel?format=nt&lang=en"),
        ("?other=x", "/doc/place/kassel"),
    ],
)
def test_redirect_keeps_the_language_and_format_and_nothing_else(client, query, location):
    """A link to a thing in a language arrives at its document in that language."""
    r = client.get("/id/place/kassel" + query, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == location
    if "lang=de" in query:
        page = client.get(location, headers={"Accept": "text/html", "Accept-Language": "en"})
        assert page.headers["content-language"] == "de" and '<html lang="de">' in page.text


@pytest.mark.parametrize("key", sorted(RDF_FORMATS))
def test_documents_by_accept_parse_and_describe_the_resource(client, base_iri, partnerships, key):
    media, parser = RDF_FORMATS[key]
    for iri in (kassel(base_iri), partnerships[0]):
        path = "/doc/" + path_of(iri, base_iri)[len("id/") :]
        r = client.get(path, headers={"Accept": f"{media}, text/html;q=0.5"})
        assert r.status_code == 200, r.text[:300]
        assert r.headers["content-type"].split(";")[0] == media
        assert "accept" in r.headers["vary"].lower()
        assert r.headers["content-location"] == f"{path}?format={key}"
        graph = Graph().parse(data=r.content, format=parser)
        node = URIRef(iri)
        assert (node, RDF.type, None) in graph, f"{key}: the resource's own triples"
        assert (None, FOAF.primaryTopic, node) in graph, f"{key}: the document says what it is about"
        assert len(list(graph.objects(node, RDFS.label))) >= 1


def test_document_holds_incoming_links_and_labels_of_linked_resources(client, base_iri, partnerships):
    r = client.get("/doc/place/kassel", headers={"Accept": "text/turtle"})
    graph = Graph().parse(data=r.text, format="turtle")
    node = URIRef(kassel(base_iri))
    partner = URIRef(tw(base_iri, "partner"))
    for ps in partnerships:
        if ps.startswith(f"{base_iri}id/partnership/kassel--"):
            assert (URIRef(ps), partner, node) in graph, ps
            assert (URIRef(ps), RDFS.label, None) in graph, f"label of the linking partnership {ps}"
    for other in graph.objects(node, URIRef(tw(base_iri, "twinnedWith"))):
        assert (other, RDFS.label, None) in graph, f"label of the linked place {other}"


def test_format_override_beats_accept(client):
    r = client.get("/doc/place/kassel", params={"format": "nt"}, headers={"Accept": "text/html"})
    assert r.headers["content-type"].startswith("application/n-triples")
    Graph().parse(data=r.text, format="nt")
    r = client.get("/doc/place/kassel", params={"format": "html"}, headers={"Accept": "text/turtle"})
    assert r.headers["content-type"].startswith("text/html")
    assert client.get("/doc/place/kassel", params={"format": "pdf"}).status_code == 400


def test_browser_gets_html_and_unacceptable_gets_406(client):
    r = client.get("/doc/place/kassel", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.headers["content-type"].startswith("text/html")
    assert "accept" in r.headers["vary"].lower()
    assert client.get("/doc/place/kassel", headers={"Accept": "image/png"}).status_code == 406


def test_head_answers_like_get(client):
    """HEAD has GET's status and headers (the HTTP server drops the body: test_sparql_endpoint)."""
    head = client.head("/doc/place/kassel", headers={"Accept": "text/turtle"})
    get = client.get("/doc/place/kassel", headers={"Accept": "text/turtle"})
    assert head.status_code == get.status_code == 200
    for name in ("content-type", "vary", "etag", "content-location", "content-length"):
        assert head.headers[name] == get.headers[name], name
    assert client.head("/id/place/kassel", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("query_lang", "header", "expected"),
    [
        (None, "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7", "en"),
        (None, "de;q=0.5, en;q=0.9", "en"),
        (None, "en;q=0, de", "de"),
        (None, "fr", "en"),
        (None, None, "en"),
        ("de", "en", "de"),
        ("xx", "de", "de"),
    ],
)
def test_language_choice(query_lang, header, expected):
    assert negotiate_language(query_lang, header) == expected


def test_unknown_iris_are_404_in_html_or_text(client):
    for path in ("/id/place/atlantis", "/doc/place/atlantis", "/id/", "/id/place/%3Cx%3E"):
        html = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert html.status_code == 404, path
        assert html.headers["content-type"].startswith("text/html")
        text = client.get(path, headers={"Accept": "text/turtle"}, follow_redirects=False)
        assert text.status_code == 404, path
        assert text.headers["content-type"].startswith("text/plain")


def _label(client: TestClient, iri: str, lang: str) -> str:
    rows = sparql(client, f'SELECT ?l WHERE {{ <{iri}> <{RDFS.label}> ?l FILTER(lang(?l) = "{lang}") }}')
    assert rows, f"{iri} has a label @{lang}"
    return rows[0]["l"]["value"]


def test_html_in_german_or_english_by_accept_language(client, base_iri, places):
    florence = next(p for p in places if p.endswith("/place/florence"))
    de, en = _label(client, florence, "de"), _label(client, florence, "en")
    assert de != en, "the test needs a place whose German and English names differ"
    page_de = client.get(
        "/doc/place/florence", headers={"Accept": "text/html", "Accept-Language": "de-DE,de;q=0.9"}
    )
    page_en = client.get(
        "/doc/place/florence", headers={"Accept": "text/html", "Accept-Language": "en-GB,en;q=0.8"}
    )
    assert '<html lang="de">' in page_de.text and f"<h1>{de}</h1>" in page_de.text
    assert '<html lang="en">' in page_en.text and f"<h1>{en}</h1>" in page_en.text
    assert "Partnerschaften" in page_de.text and "Partnerships" in page_en.text
    assert "accept-language" in page_de.headers["vary"].lower()
    # ?lang= overrides the header
    forced = client.get(
        "/doc/place/florence?lang=en", headers={"Accept": "text/html", "Accept-Language": "de"}
    )
    assert f"<h1>{en}</h1>" in forced.text


def test_each_language_and_format_has_its_own_validator(client):
    """A cached English page must not be revalidated as the German one (or Turtle as HTML)."""
    en = client.get("/", headers={"Accept-Language": "en"})
    etag = en.headers["etag"]
    assert client.get("/", headers={"Accept-Language": "en", "If-None-Match": etag}).status_code == 304
    de = client.get("/", headers={"Accept-Language": "de", "If-None-Match": etag})
    assert de.status_code == 200 and '<html lang="de">' in de.text
    html = client.get("/doc/place/kassel", headers={"Accept": "text/html"})
    conditional = {"Accept": "text/turtle", "If-None-Match": html.headers["etag"]}
    ttl = client.get("/doc/place/kassel", headers=conditional)
    assert ttl.status_code == 200 and ttl.headers["content-type"].startswith("text/turtle")


def test_place_page_shows_coordinates_partners_sources_and_same_as(client, base_iri):
    page = client.get("/doc/place/kassel", headers={"Accept": "text/html"}).text
    rows = sparql(
        client, f"SELECT ?lat ?long WHERE {{ <{kassel(base_iri)}> <{GEO}lat> ?lat ; <{GEO}long> ?long }}"
    )
    lat = float(rows[0]["lat"]["value"])
    assert f"{lat:.4f}" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="map"' in page
    for row in sparql(client, f"SELECT ?same WHERE {{ <{kassel(base_iri)}> <{OWL.sameAs}> ?same }}"):
        assert row["same"]["value"] in page
    partners = sparql(
        client,
        f"""SELECT DISTINCT ?o WHERE {{ ?ps <{tw(base_iri, "partner")}> <{kassel(base_iri)}>,
                                  ?o FILTER(?o != <{kassel(base_iri)}>) }}""",
    )
    assert len(partners) >= 9
    for row in partners:
        assert f'href="{row["o"]["value"]}"' in page, row


def test_partnership_page_shows_partners_dates_status_and_sources(client, base_iri):
    ps = f"{base_iri}id/partnership/kassel--yaroslavl"
    page = client.get("/doc/partnership/kassel--yaroslavl", headers={"Accept": "text/html"}).text
    rows = sparql(
        client,
        f"""SELECT ?start ?status ?src ?url WHERE {{ <{ps}> <{tw(base_iri, "startDate")}> ?start ;
        <{tw(base_iri, "status")}> ?status ; <http://www.w3.org/ns/prov#wasDerivedFrom> ?src .
        OPTIONAL {{ ?src <https://schema.org/url> ?url }} }}""",
    )
    assert rows
    assert rows[0]["start"]["value"] in page
    assert f'href="{rows[0]["status"]["value"]}"' in page
    for row in rows:
        assert f'href="{row["src"]["value"]}"' in page
        if "url" in row:
            assert row["url"]["value"] in page


def test_resource_pages_list_the_claims_about_them_with_sources(client, base_iri):
    ps = f"{base_iri}id/partnership/kassel--vasteras"
    rows = sparql(
        client,
        f"""PREFIX oa: <http://www.w3.org/ns/oa#>
        SELECT DISTINCT ?exact ?source WHERE {{
          ?claim <{tw(base_iri, "claimSubject")}> <{ps}> ;
                 <http://www.w3.org/ns/prov#wasDerivedFrom> ?source ;
                 oa:hasTarget/oa:hasSelector ?selector . ?selector oa:exact ?exact }}""",
    )
    assert rows, "the seed articles make claims about the Västerås partnership"
    page = "/doc/partnership/kassel--vasteras"
    en = client.get(page, headers={"Accept": "text/html", "Accept-Language": "en"})
    de = client.get(page, headers={"Accept": "text/html", "Accept-Language": "de"})
    assert "Claims about this resource" in en.text
    assert "Aussagen über diese Ressource" in de.text
    for row in rows:
        assert f"<q>{escape(row['exact']['value'])}</q>" in en.text, row["exact"]["value"]
        assert f'href="{row["source"]["value"]}"' in en.text


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.hrefs.append(value)


# ---------------------------------------------------------------- ontology


def test_ontology_html_documents_every_class_and_property(client, base_iri):
    onto = Graph().parse(
        data=client.get("/ontology", headers={"Accept": "text/turtle"}).text, format="turtle"
    )
    assert (URIRef(f"{base_iri}ontology"), RDF.type, OWL.Ontology) in onto
    terms = {
        s
        for k in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty)
        for s in onto.subjects(RDF.type, k)
        if str(s).startswith(f"{base_iri}ontology#")
    }
    assert URIRef(tw(base_iri, "Partnership")) in terms and URIRef(tw(base_iri, "partner")) in terms
    de = client.get("/ontology", headers={"Accept": "text/html", "Accept-Language": "de"})
    assert de.status_code == 200 and "accept" in de.headers["vary"].lower()
    for term in terms:
        local = str(term).split("#", 1)[1]
        assert f'id="{local}"' in de.text, local
        for label in onto.objects(term, RDFS.label):
            assert isinstance(label, Literal)
            if label.language in ("de", "en"):
                assert str(label) in de.text, (local, label)


@pytest.mark.parametrize("key", sorted(RDF_FORMATS))
def test_ontology_in_rdf_formats(client, base_iri, key):
    media, parser = RDF_FORMATS[key]
    r = client.get("/ontology", headers={"Accept": media})
    assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == media
    graph = Graph().parse(data=r.content, format=parser)
    assert (URIRef(tw(base_iri, "Place")), RDF.type, OWL.Class) in graph


# ---------------------------------------------------------------- landing page


def test_landing_page_counts_match_sparql(client, base_iri):
    queries = {
        "places": (
            "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE "
            f"{{ ?x a/<{RDFS.subClassOf}>* <{tw(base_iri, 'Place')}> }}"
        ),
        "partnerships": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a <{tw(base_iri, 'Partnership')}> }}",
        "sources": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a <{tw(base_iri, 'Source')}> }}",
        "triples": "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }",
    }
    for lang in ("en", "de"):
        page = client.get("/", headers={"Accept": "text/html", "Accept-Language": lang}).text
        assert f'<html lang="{lang}">' in page
        for key, query in queries.items():
            expected = int(sparql(client, query)[0]["n"]["value"])
            shown = re.search(rf'data-count="{key}">([\d.,]+)<', page)
            assert shown, key
            assert int(re.sub(r"[.,]", "", shown.group(1))) == expected, (lang, key)
    assert "Städtepartnerschaften" in client.get("/?lang=de").text


def test_landing_page_map_has_a_marker_for_every_partner(client, base_iri):
    page = client.get("/", headers={"Accept": "text/html"}).text
    svg = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" class="map".*?</svg>', page, re.S)
    assert svg, "inline SVG map"
    svg_text = svg.group(0)
    assert svg_text.count("<path") >= 20, "country outlines in the background"
    assert "http" not in re.sub(r'(xmlns|href|data-iri)="[^"]*"', "", svg_text), "no tile server"
    partners = sparql(
        client,
        f"""SELECT DISTINCT ?o WHERE {{
        ?ps <{tw(base_iri, "partner")}> <{kassel(base_iri)}>, ?o . FILTER(?o != <{kassel(base_iri)}>)
        ?o <{GEO}lat> ?lat ; <{GEO}long> ?long }}""",
    )
    assert len(partners) >= 9
    markers = set(re.findall(r'class="marker[^"]*" data-iri="([^"]+)"', svg_text))
    assert {row["o"]["value"] for row in partners} | {kassel(base_iri)} == markers
    assert svg_text.count('<line class="link') == len(partners)


def test_landing_page_links_endpoint_dumps_ontology_catalog(client, site):
    page = client.get("/", headers={"Accept": "text/html"}).text
    parser = _Links()
    parser.feed(page)
    paths = {urlsplit(h).path for h in parser.hrefs}
    for path in ("/sparql", "/catalog", "/.well-known/void", "/audit", "/ontology", "/about"):
        assert path in paths, path
    manifest = json.loads((site / "manifest.json").read_text())
    dumps = [name for name in manifest["files"] if name.startswith("twinning-kg.")]
    assert dumps
    for name in dumps:
        assert f"/dumps/{name}" in parser.hrefs, name
    # Everything the page loads comes from this server.
    for href in parser.hrefs:
        if href.startswith(("/static/", "/favicon")):
            assert client.get(href).status_code == 200, href
    assert not re.search(r'<(script|img|link)[^>]+(src|href)="https?://', page)


# ---------------------------------------------------------------- failures are pages, not 500s


def test_a_failing_engine_gives_a_clear_503_page(site):
    class Broken:
        async def execute(self, request):  # noqa: ANN001, ANN202
            raise QueryError(503, "store is offline")

        async def close(self) -> None:
            pass

    app = create_app(Settings(), Release.open(site), Broken())
    with TestClient(app, raise_server_exceptions=False) as tc:
        for path in ("/", "/id/place/kassel", "/doc/place/kassel", "/ontology", "/audit"):
            r = tc.get(path, headers={"Accept": "text/html"})
            assert r.status_code == 503, (path, r.status_code)
            assert "store is offline" in r.text
            assert r.headers["content-type"].startswith("text/html") and r.headers["retry-after"] == "5"
        r = tc.get("/doc/place/kassel", headers={"Accept": "text/turtle"})
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/plain")
