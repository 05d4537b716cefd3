"""Generate data/claims/<source>.ttl from the hand-written table data/claims/claims.csv.

Why a generator: the table is easy to review (one row per claim), and the character
offsets of each quote are computed from the text instead of counted by hand. The output
is committed; tests/test_claims.py re-checks every quote against the texts in ../shared,
so a drifting text or a bad edit of the Turtle is caught even without re-running this.

Usage: python tools/generate_claims.py [--shared ../shared] [--out data/claims]
Rows of a translation (column `counterpart`) inherit every empty cell except the quote
from the original-language claim with that number.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "data" / "claims" / "claims.csv"
TEXTS = ROOT / "data" / "claims" / "texts.csv"
OUT_DIR = ROOT / "data" / "claims"
MAX_WORDS = 12  # verbatim text per claim (prefix + exact + suffix), never more
CONTEXT = (16, 12, 8, 4, 2, 0)  # prefix/suffix lengths tried, longest first
INHERITED = ("subject", "property", "value", "datatype", "precision", "verdict", "trusted",
             "trusted_datatype", "evidence", "label_de", "label_en", "note_de", "note_en")
PREFIXES = {
    "tw": "ontology#", "place": "id/place/", "partnership": "id/partnership/",
    "source": "id/source/", "agent": "id/agent/", "country": "id/country/", "focus": "id/focus/",
    "status": "id/status/", "precision": "id/precision/", "verdict": "id/verdict/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#", "xsd": "http://www.w3.org/2001/XMLSchema#",
    "prov": "http://www.w3.org/ns/prov#", "oa": "http://www.w3.org/ns/oa#",
    "dcterms": "http://purl.org/dc/terms/", "schema": "https://schema.org/",
    "wd": "http://www.wikidata.org/entity/", "wdt": "http://www.wikidata.org/prop/direct/",
}
# Who makes the statements of each source (dcterms:publisher of the source, data/kassel/agents.ttl).
SPEAKER = {"seed-de": "agent:eine-reise-de", "seed-en": "agent:eine-reise-de",
           "wikidata-p190-2016": "agent:wikidata"}
NAME = re.compile(r"^[a-z]+:[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def fail(message: str) -> None:
    sys.exit(f"generate_claims: {message}")


def curie(value: str) -> str:
    if not NAME.match(value) or value.split(":")[0] not in PREFIXES:
        fail(f"not a known prefixed name: {value!r}")
    return value


def string(value: str) -> str:
    """A Turtle short string with escapes (tabs and newlines stay visible as \\t, \\n)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def literal(value: str, datatype: str) -> str:
    if datatype == "iri":
        return curie(value)
    if datatype.startswith("@"):
        return f"{string(value)}{datatype}"
    return f"{string(value)}^^{curie(datatype)}"


def locate(text: str, exact: str, occurrence: int) -> int:
    """Start of the n-th occurrence of `exact` that is not part of a longer word."""
    found, start = 0, -1
    while True:
        start = text.find(exact, start + 1)
        if start < 0:
            fail(f"quote not found ({occurrence}x): {exact!r}")
        end = start + len(exact)
        if (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum()):
            continue
        found += 1
        if found == occurrence:
            return start


def context(text: str, start: int, end: int) -> tuple[str, str]:
    for size in CONTEXT:
        prefix, suffix = text[max(0, start - size):start], text[end:end + size]
        if len((prefix + text[start:end] + suffix).split()) <= MAX_WORDS:
            return prefix, suffix
    fail(f"quote longer than {MAX_WORDS} words: {text[start:end]!r}")
    raise AssertionError


def rows(shared: Path) -> list[dict[str, str]]:
    texts = {r["source_id"]: (shared / r["path"]).read_text(encoding="utf-8")
             for r in csv.DictReader(TEXTS.open(encoding="utf-8"))}
    table = list(csv.DictReader(TABLE.open(encoding="utf-8")))
    originals = {(r["source"], r["n"]): r for r in table if not r["counterpart"]}
    out = []
    for row in table:
        if row["counterpart"]:
            original_source = "seed-de"  # the only translation pair we hold
            base = originals[(original_source, row["counterpart"])]
            row = {**row, **{k: row[k] or base[k] for k in INHERITED}}
            row["counterpart_iri"] = f"id/claim/{original_source}/{row['counterpart']}"
        text = texts[row["source"]]
        start = locate(text, row["exact"], int(row["occurrence"] or 1))
        end = start + len(row["exact"])
        row["start"], row["end"] = str(start), str(end)
        row["prefix"], row["suffix"] = context(text, start, end)
        out.append(row)
    return out


def claim_turtle(row: dict[str, str]) -> str:
    iri = f"<id/claim/{row['source']}/{row['n']}>"
    part = f"id/claim/{row['source']}/{row['n']}"
    lines = [
        f"{iri} a tw:Claim , oa:Annotation ;",
        f"    rdfs:label {literal(row['label_de'], '@de')} , {literal(row['label_en'], '@en')} ;",
        "    oa:motivatedBy oa:assessing ;",
        "    dcterms:creator agent:twinning-kg ;",
        f"    oa:hasTarget <{part}/target> ;",
        f"    prov:wasDerivedFrom source:{row['source']} ;",
        f"    prov:wasAttributedTo {SPEAKER[row['source']]} ;",
        f"    tw:claimSubject {curie(row['subject'])} ;",
        f"    tw:claimProperty {curie(row['property'])} ;",
        f"    tw:claimValue {literal(row['value'], row['datatype'])} ;",
    ]
    if row["precision"]:
        lines.append(f"    tw:valuePrecision precision:{row['precision']} ;")
    if row.get("counterpart_iri"):
        lines.append(f"    tw:translationOf <{row['counterpart_iri']}> ;")
    lines.append(f"    tw:evidence <{part}/evidence> ;")
    lines.append(f"    tw:verdict verdict:{row['verdict']} .")
    lines += [
        "",
        f"<{part}/target> a oa:SpecificResource ;",
        f"    oa:hasSource source:{row['source']} ;",
        f"    oa:hasSelector <{part}/quote> , <{part}/position> .",
        "",
        f"<{part}/quote> a oa:TextQuoteSelector ;",
        f"    oa:exact {string(row['exact'])} ;",
        f"    oa:prefix {string(row['prefix'])} ;",
        f"    oa:suffix {string(row['suffix'])} .",
        "",
        f"<{part}/position> a oa:TextPositionSelector ;",
        f"    oa:start \"{row['start']}\"^^xsd:nonNegativeInteger ;",
        f"    oa:end \"{row['end']}\"^^xsd:nonNegativeInteger .",
        "",
        f"<{part}/evidence> a tw:Evidence ;",
        "    prov:wasAttributedTo agent:twinning-kg ;",
    ]
    if row["trusted"]:
        lines.append(f"    tw:trustedValue {literal(row['trusted'], row['trusted_datatype'])} ;")
    for source in row["evidence"].split():
        lines.append(f"    prov:wasDerivedFrom {curie(source)} ;")
    lines.append(f"    rdfs:comment {literal(row['note_de'], '@de')} ,")
    lines.append(f"                 {literal(row['note_en'], '@en')} .")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where to write the Turtle files")
    args = parser.parse_args()
    by_source: dict[str, list[dict[str, str]]] = {}
    for row in rows(args.shared):
        if row["verdict"] not in ("supported", "contradicted", "unverified"):
            fail(f"{row['source']}/{row['n']}: unknown verdict {row['verdict']!r}")
        by_source.setdefault(row["source"], []).append(row)
    header = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in PREFIXES.items())
    for source, claims in by_source.items():
        body = "\n".join(claim_turtle(r) for r in sorted(claims, key=lambda r: int(r["n"])))
        text = (f"# Claims made by source {source}: GENERATED by tools/generate_claims.py from\n"
                f"# data/claims/claims.csv; edit the table, not this file.\n"
                f"# Offsets: character (code point) offsets into the texts of data/claims/texts.csv.\n\n"
                f"{header}\n{body}")
        (args.out / f"{source}.ttl").write_text(text, encoding="utf-8")
        print(f"{source}: {len(claims)} claims")


if __name__ == "__main__":
    main()
