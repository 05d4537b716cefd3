"""docs/model.md against the real thing: the worked lifecycle query is the example query of
the SPARQL page, its answer over the built release is what ../shared/facts say, and the
country extents the geography shape uses are what the tool generates."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest

from conftest import ROOT, shared_path

DOC = ROOT / "docs" / "model.md"
QUERY = ROOT / "src" / "twinning_kg" / "web" / "queries" / "5-active-on-a-day.rq"


def worked_query() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### Worked query"):]
    return re.search(r"```sparql\n(.*?)```", section, re.DOTALL).group(1)


def expected_active(day: str) -> list[str]:
    """English labels of Kassel's relations active on `day`, straight from the facts."""
    rows = []
    for name in ("kassel-twinning.csv", "more-relations.csv"):
        with shared_path("facts", name).open(newline="", encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    active = []
    for row in rows:
        if row["key"] in ("kassel", "montana-bg") or not row["start"]:
            continue
        start = row["start"]
        if day[: len(start)] < start:
            continue
        since = row.get("status_since") or row["status"].removeprefix("suspended since ").strip()
        if row["status"].startswith(("suspended", "ended")) and day[: len(since)] >= since:
            continue
        active.append(f"Kassel – {row['name_en']}")
    return sorted(active)


def test_the_worked_query_is_the_sparql_pages_example() -> None:
    assert worked_query() == QUERY.read_text(encoding="utf-8")


@pytest.mark.parametrize("day", ["2022-03-01", "2022-02-01", "2025-09-01", "1970-01-01"])
def test_the_worked_query_answers_as_the_facts_say(site: Path, day: str) -> None:
    store = ox.Store.read_only(str(site / "store"))
    query = worked_query().replace('"2022-03-01"', f'"{day}"')
    labels = sorted(row["label"].value for row in store.query(query, use_default_graph_as_union=True))
    assert labels == expected_active(day)
    if day == "2022-03-01":
        assert len(labels) == 8
        assert not any(name in " ".join(labels) for name in ("Yaroslavl", "Novy Urengoy", "Zhytomyr"))


def test_country_extents_are_what_the_tool_generates() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "make_country_extents.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "data/kassel/country-extents.ttl differs from the tool's output"


def test_pages_show_the_provisional_partnership(base_url: str) -> None:
    """Zhytomyr rests on a weak source only: the pages say so, in English and German."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=30) as client:
        page = client.get("/doc/partnership/kassel--zhytomyr", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "provisional" in page.text and "resting on weak sources only" in page.text
        german = client.get("/doc/place/kassel", headers={"Accept": "text/html", "Accept-Language": "de"})
        assert german.status_code == 200 and "vorläufig" in german.text
        florence = client.get("/doc/partnership/kassel--florence", headers={"Accept": "text/html"})
        assert "provisional" not in florence.text
