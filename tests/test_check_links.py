"""check-links on other cities' graphs read from files: one whose account of the partnership
agrees with ours, one in conflict (with a dangling IRI and a wrong Wikidata item), one
that leaves ours out (one-way, ours), one that states a partnership we do not (one-way,
theirs); and unreadable files (exit 2 with file and line). Over HTTP: test_twinning_web.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from twinning_kg.checks import links
from twinning_kg.config import Settings
from twinning_kg.release.reader import Release

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "links"
AGREES = FIXTURES / "florence-agrees.ttl"
CONFLICTS = FIXTURES / "yaroslavl-conflicts.jsonld"
SILENT = FIXTURES / "rovaniemi-silent.ttl"
ONE_WAY = FIXTURES / "weimar-one-way.nt"
ID = f"{Settings().base_iri}id/"
TW = f"{Settings().base_iri}ontology#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"


def check(*args: str) -> tuple[dict, int]:
    proc = run_cli("check-links", "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout), proc.returncode


@pytest.fixture(scope="module")
def agreeing() -> tuple[dict, int]:
    return check(str(AGREES))


@pytest.fixture(scope="module")
def conflicting() -> tuple[dict, int]:
    return check(str(CONFLICTS))


def test_agreeing_city_is_reciprocal_and_exits_0(agreeing: tuple[dict, int]) -> None:
    report, status = agreeing
    assert status == 0
    assert report["format"] == "twinning-kg check-links 2"
    assert report["ours"] == {"city": ID + "place/kassel", "wikidata": "Q2865"}
    assert report["their_cities"] == ["Q2044"]
    assert report["dangling"] == []
    [pair] = report["partnerships"]
    assert pair["partner"] == "Q2044" and pair["status"] == "reciprocal" and pair["differences"] == []
    assert pair["ours"] == ID + "partnership/kassel--florence"
    assert pair["theirs"] == "https://opendata.comune.fi.example/id/gemellaggio/kassel"
    theirs = pair["accounts"]["theirs"]
    assert theirs["asserted_as"] == ["tw:Partnership", "tw:twinnedWith", "wdt:P190"], "every way of saying it"
    assert theirs["start"]["value"] == pair["accounts"]["ours"]["start"]["value"] == "1952"
    assert theirs["status"]["value"] == ID + "status/active"
    assert {s["verdict"] for s in report["same_as"]} == {"agree"} and len(report["same_as"]) == 4
    assert report["summary"]["reciprocal"] == 1 and report["summary"]["findings"] == 0


def test_conflict_names_both_values_and_both_sources(conflicting: tuple[dict, int]) -> None:
    report, status = conflicting
    assert status == 1
    [pair] = report["partnerships"]
    assert pair["partner"] == "Q2423", "matched on our Wikidata item for the place their IRI links to"
    assert pair["status"] == "conflict" and pair["ours"] == ID + "partnership/kassel--yaroslavl"
    differences = {d["property"]: d for d in pair["differences"]}
    assert set(differences) == {"start", "status"}
    start = differences["start"]
    assert (start["ours"]["value"], start["theirs"]["value"]) == ("1988-01-25", "1989")
    assert [s["iri"] for s in start["ours"]["sources"]] == [ID + "source/k-jaroslawl-30"]
    assert start["theirs"]["sources"] == [], "their graph cites no source"
    status_ = differences["status"]
    both = (status_["ours"]["value"], status_["theirs"]["value"])
    assert both == (ID + "status/suspended", ID + "status/active")
    assert ID + "source/hna-2022" in {s["iri"] for s in status_["ours"]["sources"]}
    assert "wdt:P190" in pair["accounts"]["theirs"]["asserted_as"]
    assert [d["iri"] for d in report["dangling"]] == [ID + "partnership/kassel--jaroslawl"]
    conflicts = [s for s in report["same_as"] if s["verdict"] == "conflict"]
    assert [(c["target"], c["our_resource"]) for c in conflicts] == [
        ("http://www.wikidata.org/entity/Q2424", ID + "place/yaroslavl")
    ]
    assert report["summary"] == {**report["summary"], "conflict": 1, "dangling": 1, "same_as_conflicts": 1,
                                 "findings": 3, "exit_status": 1}


def test_one_way_either_side() -> None:
    silent, status = check(str(SILENT))
    assert status == 1
    assert [(p["partner"], p["status"], p["ours"], p["theirs"]) for p in silent["partnerships"]] == [
        ("Q103717", "one-way-ours", ID + "partnership/kassel--rovaniemi", None)
    ], "their other partnerships are theirs; ours with a city they do not speak for are not expected"
    one_way, status = check(str(ONE_WAY))
    assert status == 1
    assert [(p["partner"], p["status"], p["ours"]) for p in one_way["partnerships"]] == [
        ("Q3955", "one-way-theirs", None)
    ]
    assert one_way["partnerships"][0]["accounts"]["theirs"]["start"]["value"] == "1990"


def test_text_report_names_status_values_and_sources() -> None:
    proc = run_cli("check-links", str(CONFLICTS))
    assert proc.returncode == 1
    assert "CONFLICT" in proc.stdout and "Q2423 Yaroslavl" in proc.stdout
    assert "start: ours 1988-01-25 (Stadt Kassel" in proc.stdout and "theirs 1989" in proc.stdout
    assert "DANGLING" in proc.stdout and "kassel--jaroslawl" in proc.stdout
    assert "3 finding(s)" in proc.stdout
    ok = run_cli("check-links", str(AGREES))
    assert ok.returncode == 0 and "all partnerships reciprocal, all links agree" in ok.stdout


def test_against_a_built_release(
    site: Path, agreeing: tuple[dict, int], conflicting: tuple[dict, int]
) -> None:
    assert check("--graph", str(site), str(AGREES)) == agreeing
    assert check("--graph", str(site), str(CONFLICTS)) == conflicting


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        (
            "broken.ttl",
            "@prefix ex: <http://example.org/> .\n\nex:a ex:b ex:c ;\n  ex:d .\n",
            "broken.ttl:4:",
        ),
        (
            "broken.jsonld",
            '{\n  "@id": "http://example.org/a",\n  "http://example.org/b": [1, }\n',
            "broken.jsonld:3:",
        ),
        ("graph.csv", "a,b\n", "unknown extension"),
        # safe by default: a remote JSON-LD context is never fetched
        (
            "remote.jsonld",
            '{"@context": "https://example.org/ctx.jsonld", "@id": "http://example.org/a"}\n',
            "remote contexts",
        ),
    ],
)
def test_unreadable_file_exits_2_naming_file_and_line(
    tmp_path: Path, name: str, content: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    proc = run_cli("check-links", str(path))
    assert proc.returncode == 2, proc.stdout
    assert where in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, "one line says why"


def test_missing_file_exits_2(tmp_path: Path) -> None:
    proc = run_cli("check-links", str(tmp_path / "nowhere.ttl"))
    assert proc.returncode == 2 and "nowhere.ttl" in proc.stderr and "Traceback" not in proc.stderr


def test_every_position_of_a_triple_is_checked(site: Path) -> None:
    """A dangling IRI of ours is found as a predicate (a misspelt property) and as an object
    only (a place we do not hold); existing ones resolve in either position."""
    path = FIXTURES / "mulhouse-dangling-terms.ttl"
    base = Settings().base_iri
    ours = links.Ours(Release.open(site).select(), base, base, "kassel")
    report = links.check_links(links.read_graph(path), ours, str(path))
    assert [(d.iri, d.used_by) for d in report.dangling] == [
        (f"{ID}place/mulhausen", [f"https://data.mulhouse.example/id/ville/mulhouse {RDFS}seeAlso"]),
        (f"{TW}twinedWith", [f"https://data.mulhouse.example/id/ville/mulhouse {TW}twinedWith"]),
    ]
    assert report.resolved == [f"{ID}country/DE", f"{ID}place/kassel", f"{TW}country"]
    assert report.exit_status == 1
