"""Publication for open-data portals: the DCAT-AP catalog and the dumps it lists.

The main test harvests like a portal does: fetch /catalog from the real server, follow
every dcat:downloadURL, check size, media type and SHA-256 against the catalog, unpack
the .gz files and parse every dump with a real parser; every IRI of ours in the catalog
answers. Conformance to the official DCAT-AP 3.0.0 and DCAT-AP.de 3.0 shapes is in
test_dcat_ap_de.py. In-process tests cover what `describe()` computes and how it fails;
builds of copied sources cover where the release's dates and version come from, and the
contact point an operator configures.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pyoxigraph as ox
import pytest
from rdflib import Dataset, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from conftest import ServerProcess, run_cli
from dcat_conformance import dcat_ap
from twinning_kg.config import Settings
from twinning_kg.release.catalog import describe
from twinning_kg.release.catalog_parts import CatalogError
from twinning_kg.release.reader import DUMP_STEM, Stamp
from twinning_kg.sources.loading import load

# Plain Namespaces: rdflib's closed ones warn on DCAT 3 terms such as dcat:version.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
IANA = "https://www.iana.org/assignments/media-types/"
# The catalog names licences by the DCAT-AP.de list's IRIs; the VoID by Creative Commons' own.
CC_BY = URIRef("http://dcat-ap.de/def/licenses/cc-by/4.0")
CC0 = URIRef("http://dcat-ap.de/def/licenses/cc-zero")
CC0_DEED = URIRef("http://creativecommons.org/publicdomain/zero/1.0/")
STAMP = Stamp(version="0" * 64, date=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
RDF_FORMATS = {  # Accept -> rdflib parser
    "text/turtle": "turtle",
    "application/rdf+xml": "xml",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
}
# Ask for the bytes as stored (no on-the-fly gzip), as `curl` or `wget` without options do.
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture(scope="module")
def http(local_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def catalog(http: httpx.Client) -> Graph:
    response = http.get("/catalog", headers={"Accept": "text/turtle"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/turtle")
    return Graph().parse(data=response.content, format="turtle")


@pytest.fixture(scope="module")
def manifest(site: Path) -> dict:
    return json.loads((site / "manifest.json").read_text())


def violations(data: Graph) -> list[str]:
    """The official DCAT-AP 3.0.0 shapes' violations, one line each."""
    return [str(r) for r in dcat_ap(data) if r.severity == "Violation"]


# --- the harvester ------------------------------------------------------------------------


def test_catalog_in_every_rdf_format(http: httpx.Client, catalog: Graph) -> None:
    """Content negotiation and `?format=` give the same catalog in each syntax."""
    for media, parser in RDF_FORMATS.items():
        response = http.get("/catalog", headers={"Accept": media})
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == media
        assert "accept" in response.headers["vary"].lower()
        assert isomorphic(Graph().parse(data=response.content, format=parser), catalog), media
    keys = {"ttl": "text/turtle", "rdf": "application/rdf+xml", "jsonld": "application/ld+json",
            "nt": "application/n-triples"}
    for key, media in keys.items():
        response = http.get(f"/catalog?format={key}", headers={"Accept": "text/html"})
        assert response.headers["content-type"].split(";")[0] == media
    # An independent parser reads the JSON-LD and RDF/XML as well.
    for media in ("application/ld+json", "application/rdf+xml"):
        body = http.get("/catalog", headers={"Accept": media}).content
        assert len(list(ox.parse(body, format=ox.RdfFormat.from_media_type(media)))) == len(catalog)
    assert http.get("/catalog?format=pdf").status_code == 400
    head = http.head("/catalog", headers={"Accept": "text/turtle", **IDENTITY})
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"]
    assert http.get("/catalog", headers={"Accept": "text/turtle", **IDENTITY,
                                         "If-None-Match": head.headers["etag"]}).status_code == 304


def test_harvest_every_download(http: httpx.Client, local_server: ServerProcess, catalog: Graph,
                                manifest: dict) -> None:
    """Follow every dcat:downloadURL; size, media type and SHA-256 match; each dump parses."""
    distributions = sorted(set(catalog.subjects(RDF.type, DCAT.Distribution)))
    urls = {str(u) for d in distributions for u in catalog.objects(d, DCAT.downloadURL)}
    dumps = {name for name in manifest["files"] if name.startswith(DUMP_STEM + ".")}
    assert {u.rsplit("/", 1)[-1] for u in urls} == dumps
    assert len(dumps) == 10  # Turtle, N-Triples, N-Quads, JSON-LD, RDF/XML, each also gzipped
    triple_counts = set()
    for dist in distributions:
        url = catalog.value(dist, DCAT.downloadURL)
        if url is None:  # e.g. the SPARQL access to a named graph: an accessURL only
            continue
        assert str(url).startswith(local_server.url + "/dumps/"), url
        assert catalog.value(dist, DCAT.accessURL) == url
        response = http.get(str(url), headers=IDENTITY)
        assert response.status_code == 200, url
        body = response.content
        size = catalog.value(dist, DCAT.byteSize)
        assert size.datatype == XSD.nonNegativeInteger
        assert int(response.headers["content-length"]) == int(size) == len(body), url
        checksum = catalog.value(dist, SPDX.checksum)
        assert isinstance(checksum, URIRef)  # an IRI, not a blank node
        assert catalog.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256
        assert str(catalog.value(checksum, SPDX.checksumValue)) == hashlib.sha256(body).hexdigest()
        media = str(catalog.value(dist, DCAT.mediaType)).removeprefix(IANA)
        served = response.headers["content-type"].split(";")[0]
        if str(url).endswith(".gz"):
            assert catalog.value(dist, DCAT.compressFormat) == URIRef(IANA + "application/gzip")
            assert served == "application/gzip" and "content-encoding" not in response.headers
            body = gzip.decompress(body)
        else:
            assert served == media
        assert catalog.value(dist, DCTERMS.license) == CC_BY
        fmt = ox.RdfFormat.from_media_type(media)
        statements = list(ox.parse(body, format=fmt))
        assert statements, url
        if fmt != ox.RdfFormat.N_QUADS:
            triple_counts.add(len(statements))
        else:
            assert len(statements) == manifest["quads"]
    assert triple_counts == {manifest["triples"]}  # every syntax holds the same union


def test_dcat_ap_shapes_do_fire(catalog: Graph) -> None:
    """The conformance check is not vacuous: untyped licences and a missing title are caught."""
    broken = Graph()
    for triple in catalog:
        broken.add(triple)
    broken.remove((CC_BY, RDF.type, DCTERMS.LicenseDocument))
    dataset = next(d for d in broken.subjects(RDF.type, DCAT.Dataset) if str(d).endswith("/dataset/kassel"))
    broken.remove((dataset, DCTERMS.title, None))
    found = violations(broken)
    assert any(str(DCTERMS.license) in line for line in found), found
    assert any(str(DCTERMS.title) in line for line in found), found


def test_catalog_content(catalog: Graph, local_server: ServerProcess, site: Path) -> None:
    """What the issue asks of the catalog, as a portal would read it."""
    base = local_server.url + "/"
    cat = URIRef(base + "catalog")
    dataset = URIRef(base + "dataset/kassel")
    assert (cat, RDF.type, DCAT.Catalog) in catalog
    assert (cat, DCAT.dataset, dataset) in catalog
    for prop in (DCTERMS.title, DCTERMS.description, DCAT.keyword):
        langs = {o.language for o in catalog.objects(dataset, prop)}
        assert {"de", "en"} <= langs, prop
    for prop in (DCTERMS.publisher, DCAT.contactPoint, DCTERMS.spatial, DCTERMS.temporal, DCAT.theme,
                 DCTERMS.issued, DCTERMS.modified, DCAT.version):
        assert catalog.value(dataset, prop) is not None, prop
    # Dates and version are the release's (docs/publication.md), on the catalog and each dataset.
    version = json.loads((site / "manifest.json").read_text())["version"]
    for node in (cat, dataset):
        issued, modified = catalog.value(node, DCTERMS.issued), catalog.value(node, DCTERMS.modified)
        assert issued.datatype == XSD.dateTime and issued == modified, node
        assert catalog.value(node, DCAT.version) == Literal(version), node
    assert (None, OWL.versionInfo, None) not in catalog  # deprecated in DCAT-AP.de 3.0
    themes = {str(t) for t in catalog.objects(dataset, DCAT.theme)}
    assert all(t.startswith("http://publications.europa.eu/resource/authority/data-theme/") for t in themes)
    assert URIRef("https://sws.geonames.org/2892518/") in set(catalog.objects(dataset, DCTERMS.spatial))
    # Temporal coverage is computed from the data: Florence, 1952, was Kassel's first.
    period = catalog.value(dataset, DCTERMS.temporal)
    assert catalog.value(period, DCAT.startDate) == Literal("1952", datatype=XSD.gYear)
    # The SPARQL endpoint as a data service, followable on this host.
    service = catalog.value(cat, DCAT.service)
    assert catalog.value(service, DCAT.endpointURL) == URIRef(base + "sparql")
    assert (service, DCAT.servesDataset, dataset) in catalog
    # Licences: CC BY 4.0 for our data; the rights statement names the CC0 (Wikidata) parts.
    rights = {catalog.value(d, DCTERMS.rights) for d in catalog.objects(dataset, DCAT.distribution)}
    assert len(rights) == 1
    assert "CC0" in " ".join(str(o) for o in catalog.objects(rights.pop(), None))
    # The world import's dataset only appears in releases holding its graph.
    assert URIRef(base + "dataset/wikidata-p190-2016") not in set(catalog.subjects())


def test_catalog_iris_dereference(http: httpx.Client, catalog: Graph, local_server: ServerProcess) -> None:
    """The IRIs the catalog mints answer 303 to the document describing them."""
    for node in sorted({s for s in catalog.subjects() if str(s).startswith(local_server.url)}):
        path = str(node)[len(local_server.url):].split("#")[0]
        if path.startswith(("/id/", "/sparql", "/ontology", "/dumps/")) or path in ("/", "/catalog"):
            continue  # served by other routers
        response = http.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/catalog"


def test_dump_head_etag_and_304(http: httpx.Client, manifest: dict) -> None:
    """HEAD, Content-Length, ETag from the manifest's SHA-256, Last-Modified, 304 when unchanged."""
    name = f"{DUMP_STEM}.nt"
    info = manifest["files"][name]
    head = http.head(f"/dumps/{name}", headers=IDENTITY)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == info["bytes"]
    assert head.headers["content-type"].split(";")[0] == "application/n-triples"
    assert head.headers["etag"] == f'"{info["sha256"]}"'
    assert head.headers["last-modified"]
    again = http.get(f"/dumps/{name}", headers={**IDENTITY, "If-None-Match": head.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    last_modified = head.headers["last-modified"]
    since = http.get(f"/dumps/{name}", headers={**IDENTITY, "If-Modified-Since": last_modified})
    assert since.status_code == 304
    changed = http.get(f"/dumps/{name}", headers={**IDENTITY, "If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and len(changed.content) == info["bytes"]
    gz = http.head(f"/dumps/{name}.gz")
    assert gz.headers["content-type"] == "application/gzip" and "content-encoding" not in gz.headers


def test_dumps_index_and_unknown_files(http: httpx.Client, manifest: dict) -> None:
    index = http.get("/dumps/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    for name in manifest["files"]:
        assert f'href="{name}"' in index.text
        assert http.head(f"/dumps/{name}").status_code == 200
    assert http.get("/dumps", follow_redirects=False).status_code in (301, 308)
    for bad in ("manifest.json", "store", "nothing.ttl", "..%2Fmanifest.json", "%2E%2E"):
        assert http.get(f"/dumps/{bad}").status_code == 404, bad


# --- describe() in-process: determinism, configurable base, failures --------------------


@pytest.fixture(scope="module")
def loaded() -> Dataset:
    return load(Settings()).dataset


def fake_files(extra: dict[str, str] | None = None) -> dict[str, dict]:
    kinds = {"ttl": "text/turtle", "nt": "application/n-triples", "nq": "application/n-quads",
             "jsonld": "application/ld+json", "rdf": "application/rdf+xml"}
    files = {}
    for ext, media in {**kinds, **(extra or {})}.items():
        name = f"{DUMP_STEM}.{ext}"
        files[name] = {"bytes": len(ext), "sha256": sha(name), "media_type": media}
        files[name + ".gz"] = {"bytes": 2 * len(ext), "sha256": sha(name + ".gz"),
                               "media_type": "application/gzip"}
    return files


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ntriples(graph: Graph) -> list[str]:
    return sorted(graph.serialize(format="nt").splitlines())


def test_describe_is_deterministic_and_has_no_blank_nodes(loaded: Dataset) -> None:
    first = describe(loaded, fake_files(), Settings(), STAMP)
    second = describe(loaded, fake_files(), Settings(), STAMP)
    assert set(first) == {"catalog.ttl", "void.ttl"}
    for name in first:
        assert ntriples(first[name]) == ntriples(second[name])
        assert not [t for t in first[name] if any(x.__class__.__name__ == "BNode" for x in t)], name


def test_describe_follows_the_base_iri(tmp_path: Path) -> None:
    """With another base IRI, every IRI we mint is under it (the Turtle is relative)."""
    settings = Settings(base_iri="http://example.org/kg/")
    graphs = describe(load(settings).dataset, fake_files(), settings, STAMP)
    ours = {str(x) for g in graphs.values() for t in g for x in t
            if isinstance(x, URIRef) and ("twinning-kg" in str(x) or "example.org" in str(x))}
    assert ours and all(iri.startswith("http://example.org/kg/") for iri in ours), sorted(ours)[:5]


def test_describe_refuses_an_undescribed_dump(loaded: Dataset) -> None:
    with pytest.raises(CatalogError, match="distributions.ttl"):
        describe(loaded, fake_files({"trig": "application/trig"}), Settings(), STAMP)


def test_describe_refuses_a_media_type_mismatch(loaded: Dataset) -> None:
    files = fake_files()
    files[f"{DUMP_STEM}.ttl"]["media_type"] = "text/n3"
    with pytest.raises(CatalogError, match="text/n3"):
        describe(loaded, files, Settings(), STAMP)


def test_world_dataset_is_cc0_and_only_there_when_its_graph_is(loaded: Dataset) -> None:
    settings = Settings()
    base = settings.base_iri
    world = URIRef(base + "dataset/wikidata-p190-2016")
    catalog = describe(loaded, fake_files(), settings, STAMP)["catalog.ttl"]
    assert world not in set(catalog.subjects()) | set(catalog.objects())
    data = Dataset(default_union=True)
    for quad in loaded.quads():
        data.add(quad)
    data.graph(URIRef(base + "graph/wikidata-p190-2016")).add(
        (URIRef(base + "id/place/Q64"), RDF.type, URIRef(base + "ontology#City")))
    graphs = describe(data, fake_files(), settings, STAMP)
    catalog, void = graphs["catalog.ttl"], graphs["void.ttl"]
    assert (URIRef(base + "catalog"), DCAT.dataset, world) in catalog
    licences = {catalog.value(d, DCTERMS.license) for d in catalog.objects(world, DCAT.distribution)}
    assert licences == {CC0}
    # Its dates and version are the release's, like the main dataset's.
    assert catalog.value(world, DCAT.version) == Literal(STAMP.version)
    assert catalog.value(world, DCTERMS.modified) == Literal(STAMP.date, datatype=XSD.dateTime)
    subset = URIRef(base + "void/graph/wikidata-p190-2016")
    assert void.value(subset, DCTERMS.license) == CC0_DEED


def test_browsers_get_pages_harvesters_get_rdf(http: httpx.Client, local_server: ServerProcess) -> None:
    """HTML only when a client names it first (a browser); `*/*` and no Accept get Turtle."""
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    pages = {"/catalog": ("Kassels Städtepartnerschaften", "Kassel&#39;s town twinning"),
             "/.well-known/void": ("Benannte Graphen", "Named graphs"), "/dumps/": ("Datei", "File")}
    for path, (text_de, text_en) in pages.items():
        de = http.get(path, headers={"Accept": browser, "Accept-Language": "de"})
        en = http.get(path, headers={"Accept": browser, "Accept-Language": "en"})
        assert de.headers["content-type"].startswith("text/html") and text_de in de.text, path
        assert en.headers["content-type"].startswith("text/html") and text_en in en.text, path
        assert de.headers["etag"] != en.headers["etag"]
    page = http.get("/catalog", headers={"Accept": browser}).text
    assert f'href="{local_server.url}/dumps/{DUMP_STEM}.ttl.gz"' in page
    for accept in ("*/*", None, "text/*;q=0.9, */*;q=0.8"):
        response = http.get("/catalog", headers={"Accept": accept} if accept else {})
        assert response.headers["content-type"].startswith("text/turtle"), accept
    # q-values decide: a client preferring XML gets the catalog's XML form, RDF/XML
    xml = http.get("/catalog", headers={"Accept": "application/xml;q=0.9, */*;q=0.8"})
    assert xml.headers["content-type"].startswith("application/rdf+xml")


# --- broken hand-written parts: a clear message, nothing written -------------------------


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    """A copy of the project's sources that a test may break (TWINNING_KG_HOME points at it)."""
    root = Path(__file__).resolve().parents[1]
    for name in ("ontology", "data", "shapes", "catalog"):
        shutil.copytree(root / name, tmp_path / "home" / name)
    return tmp_path / "home"


def build_in(home: Path, out: Path) -> subprocess.CompletedProcess:
    return run_cli("build", "--out", str(out), env={**os.environ, "TWINNING_KG_HOME": str(home)})


def test_broken_publication_turtle_names_file_and_line(home: Path, tmp_path: Path) -> None:
    catalog = home / "catalog" / "catalog.ttl"
    lines = catalog.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.startswith("<catalog> a dcat:Catalog"))
    lines[line - 1] = "<catalog> a dcat:Catalog ;;; oops"
    catalog.write_text("\n".join(lines) + "\n")
    proc = build_in(home, tmp_path / "site")
    assert proc.returncode == 2, proc.stderr
    assert f"catalog.ttl:{line}" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "site").exists()


def test_undescribed_dump_fails_the_build_and_keeps_the_release(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert build_in(home, out).returncode == 0
    before = out.resolve()
    distributions = home / "catalog" / "distributions.ttl"
    text = distributions.read_text()
    typed = "<distribution/nt-gz> a dcat:Distribution"
    assert typed in text
    distributions.write_text(text.replace(typed, "<distribution/nt-gz> a dcat:Resource"))
    proc = build_in(home, out)
    assert proc.returncode in (1, 2), proc.stderr
    assert "distributions.ttl" in proc.stderr and "twinning-kg.nt.gz" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.resolve() == before


# --- every IRI of ours in the catalog answers -------------------------------------------


def follow(client: httpx.Client, iri: str, ours: str, server: str) -> httpx.Response:
    """GET one of our IRIs on this server (`ours` mapped to `server`), following redirects
    while they stay here (without --base-url a 303 may name a canonical IRI: mapped too)."""
    url = server + iri[len(ours):]
    for _ in range(5):
        response = client.get(url, follow_redirects=False)
        if not response.is_redirect:
            return response
        location = response.headers["location"]
        if location.startswith(ours):
            location = server + location[len(ours):]
        url = urljoin(url, location)
        assert url.startswith(server), f"{iri} redirects off this server: {location}"
    raise AssertionError(f"{iri}: more than 5 redirects")


@pytest.mark.parametrize("with_base_url", [True, False], ids=["with --base-url", "without --base-url"])
def test_every_iri_of_ours_in_the_catalog_answers(with_base_url: bool, request: pytest.FixtureRequest,
                                                  manifest: dict) -> None:
    """Contact page, landing pages, access and download URLs, the endpoint and every IRI the
    catalog mints: each answers 200 here (after its 303 where it names a thing)."""
    server: ServerProcess = request.getfixturevalue("local_server" if with_base_url else "server")
    ours = server.url + "/" if with_base_url else manifest["base_iri"]
    with httpx.Client(timeout=60, headers=IDENTITY) as client:
        served = client.get(server.url + "/catalog", headers={"Accept": "text/turtle"})
        catalog = Graph().parse(data=served.content, format="turtle")
        iris = {str(t) for triple in catalog for t in triple
                if isinstance(t, URIRef) and str(t).startswith(ours)}
        roles = {
            "contact page": set(catalog.objects(None, VCARD.hasURL)),
            "landing pages": set(catalog.objects(None, DCAT.landingPage)),
            "access URLs": set(catalog.objects(None, DCAT.accessURL)),
            "download URLs": set(catalog.objects(None, DCAT.downloadURL)),
            "endpoint": set(catalog.objects(None, DCAT.endpointURL)),
            "endpoint description": set(catalog.objects(None, DCAT.endpointDescription)),
        }
        for role, values in roles.items():
            assert values and {str(v) for v in values} <= iris, role  # all of ours, none elsewhere
        assert roles["contact page"] == {URIRef(ours + "about#contact")}
        for iri in sorted({i.split("#")[0] for i in iris}):
            response = follow(client, iri, ours, server.url + "/")
            assert response.status_code == 200, (iri, response.status_code)


# --- the contact point ------------------------------------------------------------------


def test_default_contact_is_our_about_page(http: httpx.Client, catalog: Graph,
                                           local_server: ServerProcess) -> None:
    """No operator contact configured: the catalog names /about, which says so and what to do."""
    contact = URIRef(local_server.url + "/catalog#contact")
    assert catalog.value(contact, VCARD.hasURL) == URIRef(local_server.url + "/about#contact")
    assert catalog.value(contact, VCARD.hasEmail) is None  # no invented address
    for lang, text in (("en", "has not published a contact address"), ("de", "keine Kontaktadresse")):
        page = http.get("/about", headers={"Accept": "text/html", "Accept-Language": lang})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'id="contact"' in page.text and text in page.text, lang
        assert "--contact-email" in page.text
    assert 'href="/about' in http.get("/", headers={"Accept": "text/html"}).text  # linked from every page


def about_page(release_dir: Path, lang: str = "en") -> str:
    """/about of a release, in-process (the page needs no query engine)."""
    from starlette.testclient import TestClient

    from twinning_kg.release.reader import Release
    from twinning_kg.web.app import create_app

    class NoEngine:
        async def execute(self, request):  # noqa: ANN001, ANN202
            raise AssertionError("the about page must not query")

        async def close(self) -> None:
            pass

    with TestClient(create_app(Settings(), Release.open(release_dir), NoEngine())) as client:
        response = client.get("/about", headers={"Accept-Language": lang})
        assert response.status_code == 200
        return response.text


def test_operator_contact_reaches_catalog_and_about_page(tmp_path: Path) -> None:
    """`--contact-*` (or TWINNING_KG_CONTACT_*) set the catalog's contact; /about shows it."""
    out = tmp_path / "site"
    env = {**os.environ, "TWINNING_KG_CONTACT_EMAIL": "opendata@beispielstadt.example"}
    proc = run_cli("build", "--out", str(out), "--contact-name", "Open-Data-Team Beispielstadt",
                   "--contact-url", "https://beispielstadt.example/opendata", env=env)
    assert proc.returncode == 0, proc.stderr
    catalog = Graph().parse(out / "catalog.ttl", format="turtle")
    contact = URIRef("https://w3id.org/twinning-kg/catalog#contact")
    assert set(catalog.objects(contact, VCARD.fn)) == {Literal("Open-Data-Team Beispielstadt")}
    assert set(catalog.objects(contact, VCARD.hasEmail)) == {URIRef("mailto:opendata@beispielstadt.example")}
    assert set(catalog.objects(contact, VCARD.hasURL)) == {URIRef("https://beispielstadt.example/opendata")}
    page = about_page(out)
    assert 'href="mailto:opendata@beispielstadt.example"' in page
    assert 'href="https://beispielstadt.example/opendata"' in page and "Open-Data-Team Beispielstadt" in page
    assert "has not published a contact address" not in page


@pytest.mark.parametrize("option, value", [("--contact-email", "not an address"),
                                           ("--contact-email", "a@b.org?subject=x"),
                                           ("--contact-url", "javascript:alert(1)"),
                                           ("--contact-url", "https://example.org/a b")])
def test_a_bad_contact_is_refused(option: str, value: str, tmp_path: Path) -> None:
    proc = run_cli("build", "--out", str(tmp_path / "site"), option, value)
    assert proc.returncode == 2 and "contact" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "site").exists()


# --- dates and version come from the release ------------------------------------------


def catalog_of(release_dir: Path) -> Graph:
    return Graph().parse(release_dir / "catalog.ttl", format="turtle")


def stamp_of(release_dir: Path) -> tuple[Literal, Literal, Literal]:
    """(issued, modified, version) of the main dataset, checked equal on the catalog itself."""
    graph = catalog_of(release_dir)
    base = json.loads((release_dir / "manifest.json").read_text())["base_iri"]
    values = []
    for node in (URIRef(base + "dataset/kassel"), URIRef(base + "catalog")):
        values.append(tuple(graph.value(node, p) for p in (DCTERMS.issued, DCTERMS.modified, DCAT.version)))
    assert values[0] == values[1]
    return values[0]


def test_a_rebuild_gives_the_same_catalog(site: Path, tmp_path: Path) -> None:
    """Same sources, same bytes: the catalog holds no clock time."""
    again = tmp_path / "again"
    run_cli("build", "--out", str(again), check=True)
    for name in ("catalog.ttl", "void.ttl"):
        assert (again / name).read_bytes() == (site / name).read_bytes(), name


def test_source_date_epoch_and_changed_sources(home: Path, tmp_path: Path) -> None:
    """SOURCE_DATE_EPOCH dates the release; a changed source changes the version."""
    env = {**os.environ, "TWINNING_KG_HOME": str(home), "SOURCE_DATE_EPOCH": "1767225600"}
    first, second, changed = tmp_path / "first", tmp_path / "second", tmp_path / "changed"
    for out in (first, second):
        assert run_cli("build", "--out", str(out), env=env).returncode == 0
    assert (first / "catalog.ttl").read_bytes() == (second / "catalog.ttl").read_bytes()
    issued, modified, version = stamp_of(first)
    assert modified == issued == Literal(datetime(2026, 1, 1, tzinfo=UTC), datatype=XSD.dateTime)
    assert str(version) == json.loads((first / "manifest.json").read_text())["version"]
    agents = home / "data" / "kassel" / "agents.ttl"
    comment = '<http://www.w3.org/2000/01/rdf-schema#comment> "changed for a test"@en'
    agents.write_text(agents.read_text() + f"\n<id/agent/stadt-kassel> {comment} .\n")
    env["SOURCE_DATE_EPOCH"] = "1767312000"
    assert run_cli("build", "--out", str(changed), env=env).returncode == 0
    _, modified_after, version_after = stamp_of(changed)
    assert version_after != version
    assert modified_after == Literal(datetime(2026, 1, 2, tzinfo=UTC), datatype=XSD.dateTime)


def test_without_git_or_epoch_the_newest_source_file_dates_the_release(home: Path, tmp_path: Path) -> None:
    """A copy of the sources outside git: the newest file's time; editing one moves it on."""
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["TWINNING_KG_HOME"] = str(home)
    old, new = datetime(2025, 3, 1, 8, 30, tzinfo=UTC), datetime(2025, 6, 15, 17, 45, 12, tzinfo=UTC)
    for path in home.rglob("*"):
        if path.is_file():
            os.utime(path, (old.timestamp(), old.timestamp()))
    assert run_cli("build", "--out", str(tmp_path / "a"), env=env).returncode == 0
    assert stamp_of(tmp_path / "a")[1] == Literal(old, datatype=XSD.dateTime)
    places = home / "data" / "kassel" / "places.ttl"
    os.utime(places, (new.timestamp(), new.timestamp()))
    assert run_cli("build", "--out", str(tmp_path / "b"), env=env).returncode == 0
    assert stamp_of(tmp_path / "b")[1] == Literal(new, datatype=XSD.dateTime)
    # shapes/ checks but adds nothing to a release: a newer shape does not date it.
    shape = next((home / "shapes").glob("*.ttl"))
    os.utime(shape, (new.timestamp() + 86400, new.timestamp() + 86400))
    assert run_cli("build", "--out", str(tmp_path / "c"), env=env).returncode == 0
    assert (tmp_path / "c" / "catalog.ttl").read_bytes() == (tmp_path / "b" / "catalog.ttl").read_bytes()


def test_a_malformed_source_date_epoch_is_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "yesterday"}
    proc = run_cli("build", "--out", str(tmp_path / "site"), env=env)
    assert proc.returncode == 2 and "SOURCE_DATE_EPOCH" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("statement", [
    'dct:modified "2026-01-01"^^<http://www.w3.org/2001/XMLSchema#date>',
    'dcat:version "2.0"',
    '<http://www.w3.org/2002/07/owl#versionInfo> "2.0"',
])
def test_hand_written_dates_and_versions_are_refused(statement: str, home: Path, tmp_path: Path) -> None:
    catalog = home / "catalog" / "catalog.ttl"
    catalog.write_text(catalog.read_text() + f"\n<dataset/kassel> {statement} .\n")
    proc = build_in(home, tmp_path / "site")
    assert proc.returncode == 2, proc.stderr
    assert "catalog.ttl" in proc.stderr and "come from the release" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "site").exists()
