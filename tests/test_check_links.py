"""check-links on two other cities' graphs: one that agrees with ours, one with conflicts
and a dangling IRI; and unreadable files (exit 2 with file and line)."""

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


def test_agreeing_city_exits_0(agreeing: tuple[dict, int]) -> None:
    report, status = agreeing
    assert status == 0
    assert report["dangling"] == []
    assert {ID + "place/kassel", ID + "place/florence", ID + "partnership/kassel--florence"} <= set(
        report["resolved"]
    )
    ways = {p["asserted_as"].split(" ")[0] for p in report["partnerships"]}
    assert ways == {"tw:Partnership", "tw:twinnedWith", "wdt:P190"}, "all three ways of asserting a twinning"
    for p in report["partnerships"]:
        assert p["agrees"] and p["our_partner"] == ID + "place/florence"
        assert p["our_partnership"] == ID + "partnership/kassel--florence"
    explicit = next(p for p in report["partnerships"] if p["asserted_as"].startswith("tw:Partnership"))
    assert explicit["their_start"] == explicit["our_start"] == "1952"
    assert explicit["their_status"] == explicit["our_status"] == ID + "status/active"
    assert {s["verdict"] for s in report["same_as"]} == {"agree"}
    assert len(report["same_as"]) == 4


def test_conflicting_city_exits_1_with_each_conflict(conflicting: tuple[dict, int]) -> None:
    report, status = conflicting
    assert status == 1
    assert [d["iri"] for d in report["dangling"]] == [ID + "partnership/kassel--jaroslawl"]
    explicit = next(p for p in report["partnerships"] if p["asserted_as"].startswith("tw:Partnership"))
    assert not explicit["agrees"]
    assert explicit["our_partnership"] == ID + "partnership/kassel--yaroslavl"
    problems = " ".join(explicit["problems"])
    assert "start: theirs 1989, ours 1988-01-25" in problems
    assert "status:" in problems and "suspended" in problems
    p190 = next(p for p in report["partnerships"] if p["asserted_as"] == "wdt:P190")
    assert p190["agrees"], "a bare P190 link to Kassel's Wikidata IRI names the right partner"
    conflicts = [s for s in report["same_as"] if s["verdict"] == "conflict"]
    assert [(c["target"], c["our_resource"]) for c in conflicts] == [
        ("http://www.wikidata.org/entity/Q2424", ID + "place/yaroslavl")
    ]
    assert "http://www.wikidata.org/entity/Q2423" in conflicts[0]["ours"]
    assert report["summary"]["conflicts"] == 2


def test_text_report_names_conflicts_and_dangling_links() -> None:
    proc = run_cli("check-links", str(CONFLICTS))
    assert proc.returncode == 1
    assert "DANGLING" in proc.stdout and "kassel--jaroslawl" in proc.stdout
    assert "CONFLICT" in proc.stdout and "2 conflicts, 1 dangling links" in proc.stdout
    ok = run_cli("check-links", str(AGREES))
    assert ok.returncode == 0 and "all links agree" in ok.stdout


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


def test_missing_file_exits_2(tmp_path: Path) -> None:
    proc = run_cli("check-links", str(tmp_path / "nowhere.ttl"))
    assert proc.returncode == 2 and "nowhere.ttl" in proc.stderr and "Traceback" not in proc.stderr


def test_every_position_of_a_triple_is_checked(site: Path) -> None:
    """A dangling IRI of ours is found as a predicate (a misspelt property) and as an object
    only (a place we do not hold); existing ones resolve in either position."""
    path = FIXTURES / "mulhouse-dangling-terms.ttl"
    report = links.check_links(path, Release.open(site).select(), Settings().base_iri)
    assert [(d.iri, d.used_by) for d in report.dangling] == [
        (f"{ID}place/mulhausen", [f"https://data.mulhouse.example/id/ville/mulhouse {RDFS}seeAlso"]),
        (f"{TW}twinedWith", [f"https://data.mulhouse.example/id/ville/mulhouse {TW}twinedWith"]),
    ]
    assert report.resolved == [f"{ID}country/DE", f"{ID}place/kassel", f"{TW}country"]
    assert report.exit_status == 1
