"""`twinning-kg validate` as a user runs it: exit 0 conforms, 1 does not, 2 unparsable file.

Each test works on a copy of ontology/, data/ and shapes/ in a temporary directory
(TWINNING_KG_HOME), so bad input never touches the project's own sources.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

PREFIXES = """@prefix tw: <ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    for name in ("ontology", "data", "shapes"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def validate_cli(home: Path, *args: str):
    return run_cli("validate", *args, env={**os.environ, "TWINNING_KG_HOME": str(home)}, timeout=300)


def test_conforming_data_exits_0(home: Path) -> None:
    proc = validate_cli(home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "conforms" in proc.stdout and "does not conform" not in proc.stdout


def test_invalid_data_exits_1_and_names_file_shape_and_messages(home: Path) -> None:
    bad = home / "data" / "kassel" / "zz-invalid.ttl"
    bad.write_text(PREFIXES + '<id/place/nowhere> a tw:City ; tw:curated true ; rdfs:label "Nowhere"@en .\n')
    proc = validate_cli(home)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "does not conform" in proc.stdout
    assert str(bad) in proc.stdout
    assert "CuratedLabelDeShape" in proc.stdout
    assert "A curated resource needs a German label" in proc.stdout
    assert "Eine gepflegte Ressource braucht eine deutsche Bezeichnung" in proc.stdout
    assert "Traceback" not in proc.stderr

    as_json = validate_cli(home, "--format", "json")
    assert as_json.returncode == 1
    body = json.loads(as_json.stdout)
    assert body["conforms"] is False
    [result] = body["results"]
    assert result["focus_iri"].endswith("id/place/nowhere")
    assert result["files"] == [str(bad)]
    assert result["path"] == "rdfs:label"


def test_unparsable_data_exits_2_with_file_and_line(home: Path) -> None:
    broken = home / "data" / "kassel" / "zz-broken.ttl"
    broken.write_text(PREFIXES + "\n<id/place/x> a tw:City ;\n    rdfs:label \"unterminated .\n")
    proc = validate_cli(home)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ")
    assert f"{broken}:5" in proc.stderr  # file and line of the unterminated string
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_unparsable_shapes_exit_2(home: Path) -> None:
    broken = home / "shapes" / "zz-broken.ttl"
    broken.write_text("@prefix sh: <http://www.w3.org/ns/shacl#> .\n<x> a sh:NodeShape ; sh:targetClass .\n")
    proc = validate_cli(home)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{broken}:2" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_shapes_follow_another_base_iri(home: Path) -> None:
    """Shapes, ontology and data are all relative to the base IRI: a new base still checks."""
    base = "https://example.org/kg/"
    assert validate_cli(home, "--base-iri", base).returncode == 0
    bad = home / "data" / "kassel" / "zz-invalid.ttl"
    bad.write_text(PREFIXES + '<id/place/nowhere> a tw:City ; tw:curated true ; rdfs:label "Nowhere"@en .\n')
    proc = validate_cli(home, "--base-iri", base, "--format", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [result] = json.loads(proc.stdout)["results"]
    assert result["focus_iri"] == base + "id/place/nowhere"
    assert result["shape_iri"] == base + "shapes#CuratedLabelDeShape"
