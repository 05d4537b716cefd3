"""The twinning web end to end: two cities' graphs, each served by the kit, read each other.

Kassel's graph is served by the real server (`local_server`, `--base-url` its own address);
Mulhouse's project is started with `new-city Q79815 --crawl` from the 2016 crawl, validated
and built with `--project`, and served the same way. `check-links` reads each from the
other over HTTP, as a linked-data client that knows only the landing page: both find the
partnership reciprocal. After Mulhouse's curator records a different start year (a second
build, a second server), both directions report a conflict with both values and both
sources. Partners that state a partnership alone, or leave ours out, are one-way; they are
served by a small partner server in this process, which also plays the hostile partner:
an endless body, a 30 s stall, a byte a second, redirect loops, a wrong or lying media
type, a gzip bomb. Each ends with exit 2 and one line that says why, within the limits.
Every JSON report is checked against docs/schemas/check-links.schema.json.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import jsonschema
import pytest

import partner_server
from conftest import ROOT, ServerProcess, run_cli, shared_path
from web_support import in_process

SCHEMA = json.loads((ROOT / "docs" / "schemas" / "check-links.schema.json").read_text(encoding="utf-8"))
KASSEL = "https://w3id.org/twinning-kg/"
MULHOUSE = "https://data.mulhouse.example/"
ESTABLISHMENT = "pship:mulhouse--Q2865 a tw:Partnership , tw:ProvisionalPartnership ;\n"


def check_links(*args: str, timeout: float = 300) -> tuple[dict, int]:
    """`check-links --format json ARGS`: the report, checked against the schema, and the exit status."""
    proc = run_cli("check-links", "--format", "json", *args, timeout=timeout)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    return report, proc.returncode


def only(report: dict, partner: str) -> dict:
    [pair] = [p for p in report["partnerships"] if p["partner"] == partner]
    return pair


# ------------------------------------------------------------------ two cities, two servers


@pytest.fixture(scope="module")
def mulhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mulhouse's project as a city's open-data team starts it, validated and built."""
    crawl = shared_path("data", "wikidata-p190-2016")
    project = tmp_path_factory.mktemp("mulhouse") / "mulhouse"
    run_cli(
        "new-city", "Q79815", "--crawl", str(crawl / "relations.tsv"), str(crawl / "names.tsv"),
        "--out", str(project), "--base-iri", MULHOUSE,
        "--label", "de=Mülhausen", "--label", "en=Mulhouse", "--label", "fr=Mulhouse", check=True,
    )
    run_cli("validate", "--project", str(project), check=True)
    run_cli("build", "--project", str(project), "--out", str(project / "site"), check=True)
    return project


@pytest.fixture(scope="module")
def recurated(mulhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same project after its curator recorded 1970 as the start of the Kassel partnership."""
    project = tmp_path_factory.mktemp("mulhouse-1970") / "mulhouse"
    shutil.copytree(mulhouse, project, ignore=shutil.ignore_patterns("site"))
    path = project / "data" / "mulhouse" / "partnerships.ttl"
    text = path.read_text(encoding="utf-8")
    assert ESTABLISHMENT in text, "new-city writes the Kassel partnership as provisional"
    event = "    tw:event <id/partnership/mulhouse--Q2865/establishment-1970> ;\n"
    text = text.replace(ESTABLISHMENT, ESTABLISHMENT + event)
    text += (
        "\n<id/partnership/mulhouse--Q2865/establishment-1970> a tw:Establishment ;\n"
        '    tw:date "1970"^^xsd:gYear ; tw:datePrecision prec:year ;\n'
        "    tw:eventSource source:wikidata-p190-2016 .\n"
    )
    path.write_text(text, encoding="utf-8")
    run_cli("validate", "--project", str(project), check=True)
    run_cli("build", "--project", str(project), "--out", str(project / "site"), check=True)
    return project


def serve(project: Path, log_dir: Path) -> ServerProcess:
    srv = ServerProcess(["--project", str(project), "--graph", str(project / "site")])
    srv.args += ["--base-url", srv.url + "/"]
    return srv.start(log_dir)


@pytest.fixture(scope="module")
def mulhouse_server(mulhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = serve(mulhouse, tmp_path_factory.mktemp("logs"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def recurated_server(recurated: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = serve(recurated, tmp_path_factory.mktemp("logs"))
    yield srv
    srv.stop()


def test_kassel_reads_mulhouse_over_http_and_finds_the_pair_reciprocal(
    mulhouse_server: ServerProcess,
) -> None:
    report, status = check_links(mulhouse_server.url + "/")
    assert status == 0, report["summary"]
    assert report["their_cities"] == ["Q79815"]
    assert report["summary"]["partnerships"] == 1 and report["summary"]["findings"] == 0
    pair = only(report, "Q79815")
    assert pair["status"] == "reciprocal" and pair["differences"] == []
    assert pair["ours"] == f"{KASSEL}id/partnership/kassel--mulhouse"
    assert pair["theirs"] == f"{MULHOUSE}id/partnership/mulhouse--Q2865"
    assert pair["accounts"]["theirs"]["provisional"] is True
    # discovered as a linked-data client does: landing page -> /.well-known/void -> a dump
    read = report["read"]
    assert read["trail"][:2] == [mulhouse_server.url + "/", mulhouse_server.url + "/.well-known/void"]
    assert read["via"] == "dump" and read["url"].startswith(mulhouse_server.url + "/dumps/")


def test_mulhouse_reads_kassel_over_http_and_finds_the_pair_reciprocal(
    mulhouse: Path, local_server: ServerProcess
) -> None:
    report, status = check_links("--project", str(mulhouse), local_server.url + "/")
    assert status == 0, report["summary"]
    assert report["ours"] == {"city": f"{MULHOUSE}id/place/mulhouse", "wikidata": "Q79815"}
    assert report["their_cities"] == ["Q2865"]
    pair = only(report, "Q2865")
    assert pair["status"] == "reciprocal"
    assert (pair["ours"], pair["theirs"]) == (
        f"{MULHOUSE}id/partnership/mulhouse--Q2865", f"{KASSEL}id/partnership/kassel--mulhouse"
    )


def test_a_different_start_year_is_a_conflict_with_both_values_both_ways(
    recurated: Path, recurated_server: ServerProcess, local_server: ServerProcess
) -> None:
    kassel_view, status = check_links(recurated_server.url + "/")
    assert status == 1
    pair = only(kassel_view, "Q79815")
    assert pair["status"] == "conflict"
    [start] = pair["differences"]
    assert start["property"] == "start"
    assert (start["ours"]["value"], start["theirs"]["value"]) == ("1965", "1970")
    assert f"{KASSEL}id/source/presse-mulhouse-2015" in {s["iri"] for s in start["ours"]["sources"]}
    assert [s["iri"] for s in start["theirs"]["sources"]] == [f"{MULHOUSE}id/source/wikidata-p190-2016"]

    mulhouse_view, status = check_links("--project", str(recurated), local_server.url + "/")
    assert status == 1
    [start] = only(mulhouse_view, "Q2865")["differences"]
    assert (start["ours"]["value"], start["theirs"]["value"]) == ("1970", "1965")

    text = run_cli("check-links", "--project", str(recurated), local_server.url + "/")
    assert text.returncode == 1
    assert "CONFLICT" in text.stdout and "ours 1970" in text.stdout and "theirs 1965" in text.stdout


# ------------------------------------------------------------------ a partner server, polite or hostile


@pytest.fixture(scope="module")
def partner() -> Iterator[str]:
    with partner_server.running() as url:
        yield url


def test_a_partnership_only_their_graph_states_is_one_way_theirs(partner: str) -> None:
    report, status = check_links(partner + "/weimar/")
    assert status == 1
    pair = only(report, "Q3955")
    assert pair["status"] == "one-way-theirs" and pair["ours"] is None
    assert pair["theirs"] == "https://weimar.example/id/partnership/weimar--Q2865"
    assert report["read"]["trail"] == [partner + "/weimar/", partner + "/weimar/data.nt"]


def test_a_partner_graph_that_leaves_ours_out_is_one_way_ours(partner: str) -> None:
    report, status = check_links(partner + "/rovaniemi/")
    assert status == 1
    pair = only(report, "Q103717")
    assert pair["status"] == "one-way-ours" and pair["theirs"] is None
    assert pair["ours"] == f"{KASSEL}id/partnership/kassel--rovaniemi"
    assert report["read"]["trail"] == [
        partner + "/rovaniemi/", partner + "/.well-known/void", partner + "/rovaniemi/data.ttl.gz"
    ]
    assert report["summary"]["one_way_ours"] == 1 and report["summary"]["reciprocal"] == 0


def test_a_graph_offered_only_through_its_sparql_endpoint_is_read_with_a_construct(
    mulhouse: Path, partner: str, server: ServerProcess
) -> None:
    """A description with no dump but `void:sparqlEndpoint`: the client asks Kassel's
    endpoint for the partnerships and what they point to, and compares as from a dump.
    (Kassel's server without `--base-url`, as deployed at its own IRIs: with it, /sparql
    answers in the local IRI space, the vocabulary's terms included.)"""
    url = f"{partner}/void-endpoint?at={quote(server.url + '/sparql', safe='')}"
    report, status = check_links("--project", str(mulhouse), url)
    assert status == 0, report["summary"]
    assert report["read"]["via"] == "sparql"
    assert report["read"]["url"].startswith(server.url + "/sparql?query=CONSTRUCT")
    assert only(report, "Q2865")["status"] == "reciprocal"


# path, limits given, words the one line must hold, most seconds it may take
HOSTILE = {
    "endless": ("/endless", ["--max-bytes", "1048576"], "more than the limit of 1,048,576 bytes", 20),
    "stall": ("/stall", ["--timeout", "3"], "time limit", 3 + 12),
    "silent": ("/silent", ["--timeout", "3"], "time limit", 3 + 12),
    "drip": ("/drip", ["--timeout", "3"], "time limit", 3 + 12),
    "loop": ("/loop", [], "redirect loop", 20),
    "hops": ("/hop/1", ["--max-redirects", "3"], "more than 3 redirects", 20),
    "picture": ("/picture", [], "served as image/png", 20),
    "lying": ("/lying", [], "not valid text/turtle", 20),
    "bomb": ("/bomb.nt.gz", ["--max-bytes", "1048576"], "once decompressed", 20),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_partner_gets_one_line_and_exit_2_within_the_limits(partner: str, case: str) -> None:
    path, limits, words, most = HOSTILE[case]
    started = time.monotonic()
    proc = run_cli("check-links", *limits, partner + path, timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert words in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert took < most, f"{case}: {took:.1f} s"


# ------------------------------------------------------------------ partner graphs on our pages


def test_refreshed_partner_graph_shows_in_the_audit_and_on_the_partnership_page(
    recurated: Path, local_server: ServerProcess, tmp_path: Path
) -> None:
    """Mulhouse lists Kassel's graph; refresh-partners keeps what it says (with provenance),
    the audit lists the conflict beside the claims (exit 1), the page says it differs."""
    project = tmp_path / "mulhouse"
    shutil.copytree(recurated, project, ignore=shutil.ignore_patterns("site"))
    config = project / "twinning-kg.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("partners = []", f'partners = ["{local_server.url}/"]'),
        encoding="utf-8",
    )
    run_cli("refresh-partners", "--project", str(project), check=True)
    stored = sorted(p.name for p in (project / "partners").iterdir())
    assert stored, "refresh-partners stores the partner's account under partners/"

    audit = run_cli("audit", "--project", str(project), "--format", "json")
    assert audit.returncode == 1, audit.stderr
    assert "1 conflicts with partner graphs" in audit.stderr
    [graph] = json.loads(audit.stdout)["cross_graph"]
    assert graph["url"] == local_server.url + "/" and graph["cities"] == ["Q2865"]
    assert len(graph["sha256"]) == 64 and graph["retrieved"]
    [pair] = [p for p in graph["partnerships"] if p["status"] == "conflict"]
    assert [(d["property"], d["ours"]["value"], d["theirs"]["value"]) for d in pair["differences"]] == [
        ("start", "1970", "1965")
    ]
    text = run_cli("audit", "--project", str(project), "--lang", "de")
    assert "Widerspruch" in text.stdout and "Beginn: unsere 1970" in text.stdout

    site = project / "site"
    run_cli("build", "--project", str(project), "--out", str(site), check=True)
    with in_process(site, city_key="mulhouse", vocabulary_iri=KASSEL) as client:
        page = client.get("/doc/partnership/mulhouse--Q2865", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "partner-differs" in page.text and "states it differently" in page.text
        assert f'href="{local_server.url}/"' in page.text, "where the partner's account was read"
        assert "Start: ours 1970" in page.text and "theirs 1965" in page.text
        german = client.get("/doc/partnership/mulhouse--Q2865?lang=de", headers={"Accept": "text/html"})
        assert "gibt sie anders an" in german.text and "Beginn: unsere 1970" in german.text
        other = client.get("/doc/partnership/mulhouse--Q628", headers={"Accept": "text/html"})
        assert other.status_code == 200 and "partner-no-graph" in other.text, "none speaks for Bergamo"
        audit_page = client.get("/audit", headers={"Accept": "text/html"})
        assert 'id="cross-graph"' in audit_page.text and "only in our graph" not in audit_page.text
        assert "Start: ours 1970" in audit_page.text


# ------------------------------------------------------------------ the guide, as written

GUIDE = ROOT / "docs" / "publish-your-city.md"
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def guide_commands() -> list[list[str]]:
    """Every command of the guide's `sh` blocks, in order (continuation lines joined)."""
    commands = []
    for block in SH_BLOCK.findall(GUIDE.read_text(encoding="utf-8")):
        commands += [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return commands


def test_the_publish_guide_runs_as_written(local_server: ServerProcess, tmp_path: Path) -> None:
    """docs/publish-your-city.md from new-city to a served graph that Kassel reads back: each
    command as the guide shows it, with the crawl's files and local servers for the URLs."""
    commands = guide_commands()
    assert [c[:2] for c in commands] == [["twinning-kg", name] for name in (
        "new-city", "validate", "refresh-partners", "build", "audit", "check-links", "serve", "check-links"
    )]
    crawl = shared_path("data", "wikidata-p190-2016")
    files = {"relations.tsv": str(crawl / "relations.tsv"), "names.tsv": str(crawl / "names.tsv")}
    served: ServerProcess | None = None
    try:
        for argv in commands:
            args = [files.get(a) or a for a in argv[1:]]
            args = [str(tmp_path / a) if a == "mulhouse" or a.startswith("mulhouse/") else a for a in args]
            args = [local_server.url + "/" if a == KASSEL else a for a in args]
            if args[0] == "serve":
                served = ServerProcess(args[1:])
                at = served.args.index("--base-url")
                assert served.args[at + 1] == MULHOUSE
                served.args[at + 1] = served.url + "/"
                served.start(tmp_path)
                continue
            if served is not None:
                args = [served.url + "/" if a == MULHOUSE else a for a in args]
            proc = run_cli(*args, cwd=tmp_path)
            assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stdout}{proc.stderr}"
            if args[0] == "check-links":
                assert "all partnerships reciprocal" in proc.stdout, proc.stdout
            if args[0] == "audit":
                assert "1 reciprocal" in proc.stdout, proc.stdout
        assert served is not None
        page = httpx.get(served.url + "/doc/partnership/mulhouse--Q2865", headers={"Accept": "text/html"})
        assert "partner-confirmed" in page.text, "Kassel's graph confirms it, and the page says so"
    finally:
        if served is not None:
            served.stop()


def test_refresh_partners_keeps_what_it_has_when_a_partner_fails(
    mulhouse: Path, local_server: ServerProcess, partner: str, tmp_path: Path
) -> None:
    """One partner stalls: the others are stored, the stalling one is one line (exit 2);
    a later failing refresh leaves the last good snapshots as they were."""
    project = tmp_path / "mulhouse"
    shutil.copytree(mulhouse, project, ignore=shutil.ignore_patterns("site"))
    config = project / "twinning-kg.toml"
    template = config.read_text(encoding="utf-8")

    def partners(*urls: str) -> None:
        listed = f"partners = {json.dumps(list(urls))}"
        config.write_text(template.replace("partners = []", listed), encoding="utf-8")

    partners(local_server.url + "/", partner + "/stall")
    started = time.monotonic()
    proc = run_cli("refresh-partners", "--project", str(project), "--timeout", "2")
    assert proc.returncode == 2 and time.monotonic() - started < 30
    assert f"{local_server.url}/: 1 partnership(s) with us" in proc.stdout
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {partner}/stall") and "time limit" in line
    kept = {p.name: p.read_bytes() for p in (project / "partners").iterdir()}
    assert len(kept) >= 2, "the snapshot and its provenance"

    partners(partner + "/loop", partner + "/picture")
    proc = run_cli("refresh-partners", "--project", str(project))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 2
    assert {p.name: p.read_bytes() for p in (project / "partners").iterdir()} == kept
