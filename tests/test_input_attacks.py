"""Hostile input files against the real CLI (a subprocess each): XML entity bombs and external
entities, JSON nested past the recursion limit, malformed SPARQL JSON rows, and the exact
line numbers of CSV errors.

Every refusal must be fast, bounded in memory, one `error:` line naming the file, exit
status 2, and never a traceback. Each attack is tried in the obfuscated forms an attacker
would use (case, whitespace, comments, BOMs, other encodings, parameter entities, ...).
"""

from __future__ import annotations

import ast
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, run_cli
from twinning_kg.sources import untrusted_input

RDF_NS = 'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#"'
# Enough address space for the CLI itself, far too little for an expanded bomb (3 GB).
MEMORY_CAP = 1536 * 1024 * 1024


def _rdfxml(doctype: str, label: str) -> str:
    return (
        f'<?xml version="1.0"?>\n{doctype}\n<rdf:RDF {RDF_NS}>\n'
        f' <rdf:Description rdf:about="http://example.org/x"><rdfs:label>{label}</rdfs:label>'
        "</rdf:Description>\n</rdf:RDF>\n"
    )


def billion_laughs(keyword: str = "<!DOCTYPE", entity: str = "<!ENTITY") -> str:
    """The classic: 10 levels of 10 references, 10^9 "lol"s (3 GB) from about 1 KB."""
    levels = [f'{entity} lol0 "lol">'] + [
        f'{entity} lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return _rdfxml(f"{keyword} rdf:RDF [\n " + "\n ".join(levels) + "\n]>", "&lol9;")


BOMB = billion_laughs()
XXE = _rdfxml('<!DOCTYPE rdf:RDF [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>', "&xxe;")
# (file name, bytes): the bomb and external entities, plain and disguised.
XML_ATTACKS = {
    "bomb.rdf": BOMB.encode(),
    "bomb.owl": BOMB.encode(),
    "xxe.rdf": XXE.encode(),
    "lowercase-doctype.rdf": billion_laughs("<!doctype", "<!entity").encode(),
    "bom.rdf": b"\xef\xbb\xbf" + BOMB.encode(),
    "utf16.rdf": BOMB.replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16"),
    "after-comment.rdf": BOMB.replace("<!DOCTYPE", "<!-- a comment -->\n<!DOCTYPE", 1).encode(),
    "after-pi.rdf": BOMB.replace("<!DOCTYPE", "<?pi x?><!DOCTYPE", 1).encode(),
    "external-dtd.rdf": _rdfxml('<!DOCTYPE rdf:RDF SYSTEM "file:///etc/passwd">', "x").encode(),
    "parameter-entity.rdf": _rdfxml(
        '<!DOCTYPE rdf:RDF [ <!ENTITY % p SYSTEM "file:///etc/passwd"> %p; ]>', "x"
    ).encode(),
    "quadratic.rdf": _rdfxml(
        f'<!DOCTYPE rdf:RDF [ <!ENTITY big "{"x" * 400}"> ]>', "&big;" * 150
    ).encode(),
    "no-xml-declaration.rdf": BOMB.split("\n", 1)[1].encode(),
}


def _run_capped(tmp_path: Path, *args: str, timeout: float = 60) -> tuple[int, str, str, float, int]:
    """The CLI under an address-space cap: (exit status, stdout, stderr, seconds, peak RSS in MB).

    Output goes to files and the child is reaped with wait4, so the peak memory is this
    child's own, not the largest of every process the test session has run.
    """

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    out, err = tmp_path / "stdout", tmp_path / "stderr"
    start = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "twinning_kg", *args],
            stdout=stdout,
            stderr=stderr,
            cwd=ROOT,
            preexec_fn=cap,  # the child only sets a limit before exec
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise AssertionError(f"twinning-kg {' '.join(args)} ran over {timeout} s")
            time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    seconds = time.monotonic() - start
    return proc.returncode, out.read_text(), err.read_text(), seconds, usage.ru_maxrss // 1024


def _one_error_line(stderr: str, name: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert name in lines[0], stderr
    return lines[0]


@pytest.mark.parametrize("name", sorted(XML_ATTACKS))
def test_check_links_refuses_xml_bombs_and_external_entities(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(XML_ATTACKS[name])
    status, stdout, stderr, seconds, peak_mb = _run_capped(tmp_path, "check-links", str(path))
    assert status == 2, (status, stderr[-2000:])
    line = _one_error_line(stderr, name)
    assert "root:" not in stdout + stderr, "a local file was read"
    if name == "utf16.rdf":
        assert "only UTF-8 is accepted" in line
    else:
        assert "refused: the XML has a markup declaration" in line
    assert seconds < 20, f"{name}: took {seconds:.1f} s"
    assert peak_mb < 512, f"{name}: peak RSS {peak_mb} MB"


def test_the_bomb_is_small_and_names_its_line(tmp_path: Path) -> None:
    assert len(BOMB.encode()) < 1100, "a 1 KB file"
    path = tmp_path / "bomb.rdf"
    path.write_text(BOMB, encoding="utf-8")
    proc = run_cli("check-links", str(path))
    assert proc.returncode == 2
    assert f"{path}:2:1: refused" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "body",
    [
        "<!-- a comment with <tags> -->",
        "<rdfs:comment><![CDATA[ <b>markup</b> & more ]]></rdfs:comment>",
    ],
)
def test_rdfxml_with_comments_and_cdata_is_still_read(tmp_path: Path, body: str) -> None:
    """The guard refuses declarations, not XML: comments and CDATA sections pass."""
    path = tmp_path / "fine.rdf"
    path.write_text(
        f'<?xml version="1.0"?>\n<rdf:RDF {RDF_NS}>\n<rdf:Description rdf:about="http://example.org/x">'
        f'<rdfs:label>x</rdfs:label>{body}</rdf:Description>\n</rdf:RDF>\n',
        encoding="utf-8",
    )
    proc = run_cli("check-links", "--format", "json", str(path))
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads(proc.stdout)["source"].endswith("fine.rdf")


# ------------------------------------------------------------------ JSON nested past the limit


def _deep_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


DEEP_JSON = {
    "arrays.jsonld": _deep_arrays(100_000),
    "objects.jsonld": '{"http://example.org/p": ' * 5_000 + "1" + "}" * 5_000,
    "in-graph.jsonld": '{"@graph": ' + _deep_arrays(2_000) + "}",
    "just-past-python.json": _deep_arrays(1_100),
    "crlf.jsonld": "{\r\n" + '"@graph":' + "[\r\n" * 3_000 + "]" * 3_000 + "}",
}


@pytest.mark.parametrize("name", sorted(DEEP_JSON))
def test_check_links_refuses_json_nested_too_deep(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(DEEP_JSON[name], encoding="utf-8")
    proc = run_cli("check-links", str(path))
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = _one_error_line(proc.stderr, name)
    assert f"nested deeper than {untrusted_input.MAX_JSON_DEPTH} levels" in line
    assert f"{path}:" in line and line.split(f"{path}:")[1].split(":")[0].isdigit(), "line number"


def test_brackets_inside_strings_do_not_count(tmp_path: Path) -> None:
    path = tmp_path / "brackets.jsonld"
    text = "[{" * 10_000
    path.write_text(json.dumps({"@id": "http://example.org/a", "http://example.org/p": text}))
    proc = run_cli("check-links", "--format", "json", str(path))
    assert proc.returncode in (0, 1), proc.stderr


def test_json_depth_limit_is_exact() -> None:
    limit = untrusted_input.MAX_JSON_DEPTH
    untrusted_input.check_json_depth(_deep_arrays(limit), "f.json")
    # brackets and escaped quotes inside strings are text, not nesting
    strings = '["\\"[[[[", "]]\\\\", {"k": "[{"}]'
    untrusted_input.check_json_depth("[" * (limit - 2) + strings + "]" * (limit - 2), "f.json")
    with pytest.raises(untrusted_input.UntrustedInputError, match=rf"^f\.json:1:{limit + 1}: "):
        untrusted_input.check_json_depth(_deep_arrays(limit + 1), "f.json")
    with pytest.raises(untrusted_input.UntrustedInputError, match=rf"^f\.json:3:{limit}: "):
        untrusted_input.check_json_depth('{\n"a":\n' + _deep_arrays(limit) + "}", "f.json")


# ------------------------------------------------------------------ import wdqs-json, malformed rows


def _wdqs_with(tmp_path: Path, name: str, mutate) -> Path:  # noqa: ANN001 - callable(document)
    document = json.loads((FIXTURES / "import" / "wdqs-p190.json").read_text(encoding="utf-8"))
    mutate(document)
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _row(document: dict, **terms: object) -> None:
    """Append a row naming a place that is not curated (so its label would be imported)."""
    row = dict(document["results"]["bindings"][0])
    row["city"] = {"type": "uri", "value": "http://www.wikidata.org/entity/Q777777"}
    row.update(terms)
    document["results"]["bindings"].append(row)


WDQS_ATTACKS = {
    "row-is-a-string": (lambda d: d["results"]["bindings"].append("not an object"), "must be a JSON object"),
    "row-is-a-list": (lambda d: d["results"]["bindings"].append([1, 2]), "must be a JSON object"),
    "row-is-null": (lambda d: d["results"]["bindings"].append(None), "must be a JSON object"),
    "term-is-a-string": (
        lambda d: _row(d, city="http://www.wikidata.org/entity/Q1"),
        "?city must be a JSON object",
    ),
    "term-without-value": (lambda d: _row(d, twin={"type": "uri"}), "?twin has no valid value"),
    "term-of-unknown-type": (lambda d: _row(d, twin={"type": "iri", "value": "x"}), "?twin has type"),
    "lang-with-space": (
        lambda d: _row(d, cityLabel={"type": "literal", "value": "X", "xml:lang": "en us!"}),
        "ill-formed language tag",
    ),
    "lang-empty": (
        lambda d: _row(d, cityLabel={"type": "literal", "value": "X", "xml:lang": ""}),
        "ill-formed language tag",
    ),
    "lang-newline": (
        lambda d: _row(d, cityLabel={"type": "literal", "value": "X", "xml:lang": "de\n"}),
        "ill-formed language tag",
    ),
    "lang-long-subtag": (
        lambda d: _row(d, cityLabel={"type": "literal", "value": "X", "xml:lang": "abcdefghi"}),
        "ill-formed language tag",
    ),
    "lang-number": (
        lambda d: _row(d, cityLabel={"type": "literal", "value": "X", "xml:lang": 7}),
        "ill-formed language tag",
    ),
    "vars-hold-an-object": (lambda d: d["head"]["vars"].append({"x": 1}), "head.vars[8]"),
    "bindings-not-a-list": (lambda d: d["results"].update(bindings={"a": 1}), "not a SPARQL 1.1 JSON"),
    "document-without-head": (lambda d: (d.clear(), d.update(x=[])), "not a SPARQL 1.1 JSON"),
}


@pytest.mark.parametrize("name", sorted(WDQS_ATTACKS))
def test_wdqs_json_malformed_rows_exit_2_with_one_line(tmp_path: Path, name: str) -> None:
    mutate, expected = WDQS_ATTACKS[name]
    path = _wdqs_with(tmp_path, f"{name}.json", mutate)
    out = tmp_path / "out"
    proc = run_cli("import", "wdqs-json", str(path), "--out", str(out))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{path}" in errors[0] and expected in errors[0], proc.stderr
    if name.startswith(("row-", "term-", "lang-")):
        assert "result 11 (results.bindings[10])" in errors[0], "names the row"
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("deep.json", '{"head": {"vars": ["city", "twin"]}, "results": {"bindings": ['
         + "[" * 5_000 + "]" * 5_000 + "]}}", ":1:"),
        ("deep-in-row.json", '{"head": {"vars": ["city", "twin"]}, "results": {"bindings": [{"city": '
         + '{"x": ' * 3_000 + "1" + "}" * 3_000 + "}]}}", "nested deeper than"),
        ("latin1.json", None, "not UTF-8"),
        ("list.json", "[1, 2]", "not a SPARQL 1.1 JSON"),
        ("syntax.json", '{"head": {"vars": ["city", "twin"]},\n "results": {"bindings": [}}', ":2:"),
    ],
)
def test_wdqs_json_unreadable_files_exit_2(
    tmp_path: Path, name: str, content: str | None, expected: str
) -> None:
    path = tmp_path / name
    if content is None:
        path.write_bytes('{"head": {"vars": ["city", "twin", "Köln"]}}'.encode("latin-1"))
    else:
        path.write_text(content, encoding="utf-8")
    proc = run_cli("import", "wdqs-json", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(path) in errors[0] and expected in errors[0], proc.stderr


# ------------------------------------------------------------------ CSV errors on the right line


TEMPLATE = ROOT / "data" / "templates" / "partnerships-template.csv"
HEADER = TEMPLATE.read_text(encoding="utf-8").splitlines()[0]
SOURCE = "test-contrib,https://example.org/x,Test,en,test fixture,weak"
TAIL = f"de,Q3138,Trier,de,town-twinning,1987,year,,,,,{SOURCE}"
GOOD = f"Q3955,Weimar,{TAIL}"
SELF = f"Q3955,Weimar,de,Q3955,Trier,de,town-twinning,1987,year,,,,,{SOURCE}"
PARTNERS_ITSELF = "a place cannot partner itself"


@pytest.mark.parametrize(
    ("name", "lines", "expected"),
    [
        ("bad-quote", [HEADER, GOOD, f'Q3955,"Wei"mar,{TAIL}'], ":3: ',' expected after '\"'"),
        ("open-quote-at-end", [HEADER, GOOD, f'Q3955,"Weimar,{TAIL}'], ":3: unexpected end of data"),
        ("after-blank-line", [HEADER, GOOD, "", SELF], f":4: {PARTNERS_ITSELF}"),
        ("after-multiline-cell", [HEADER, f'Q3955,"Wei\nmar",{TAIL}', SELF], f":4: {PARTNERS_ITSELF}"),
        ("unicode-line-separator", [HEADER, f"Q3955,Wei\u2028mar,{TAIL}", SELF], f":3: {PARTNERS_ITSELF}"),
        ("form-feed", [HEADER, f"Q3955,Wei\x0cmar,{TAIL}", SELF], f":3: {PARTNERS_ITSELF}"),
        (
            "bad-quote-in-multiline-row",
            [HEADER, GOOD, f'Q3955,"Wei\nm"ar,{TAIL}'],
            ":4: ',' expected after '\"' (the row starting at line 3)",
        ),
        ("too-many-cells", [HEADER, GOOD, GOOD + ",extra"], ":3: more cells than columns"),
        ("bad-date", [HEADER, GOOD, GOOD.replace("1987,year", "1987-13,")], ":3: start: date '1987-13'"),
    ],
)
def test_csv_errors_name_the_exact_line(tmp_path: Path, name: str, lines: list[str], expected: str) -> None:
    path = tmp_path / f"{name}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\r\n".join(lines) + "\r\n" if name == "bad-date" else "\n".join(lines) + "\n")
    proc = run_cli("import", "csv", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"{path}{expected}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------ every XML parse is guarded

XML_FORMATS = {"xml", "trix", "application/rdf+xml", "rdf/xml", "RDF_XML", "application/trix"}


def _xml_parses(tree: ast.AST) -> list[int]:
    """Lines of XML parser imports, of Oxigraph's RDF/XML format (parsers pick it from a
    table), and of parse/load calls given an XML format by name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("RDF_XML", "XML") and (
            getattr(node.value, "attr", "") in ("RdfFormat", "QueryResultsFormat")
        ):
            found.append(node.lineno)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            # Module names only: a symbol such as `xml_forbidden` imported from our own
            # module parses nothing.
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = [alias.name for alias in node.names]
            if any(n.split(".")[0] in ("lxml", "defusedxml", "xml") for n in names):
                found.append(node.lineno)
        elif isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called not in ("parse", "load", "parse_query_results"):
                continue
            for value in [*node.args, *(k.value for k in node.keywords)]:
                text = value.value if isinstance(value, ast.Constant) else getattr(value, "attr", None)
                if isinstance(text, str) and text in XML_FORMATS:
                    found.append(node.lineno)
    return found


def test_every_xml_parse_in_the_code_goes_through_the_guard() -> None:
    """The places that parse XML from outside are the linked-data client of check-links and
    refresh-partners, and the remote engine's SPARQL XML results (both through `check_xml`);
    the dumps and the sitemap only *write* XML. A new XML parse anywhere must come with the
    guard (and be added here knowingly)."""
    seen = {}
    for path in sorted((ROOT / "src" / "twinning_kg").rglob("*.py")):
        lines = _xml_parses(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            seen[path.name] = lines
    expected = {"linked_data_client.py", "dumps.py", "remote_engine.py", "crawlers.py"}
    assert set(seen) == expected, f"XML parsed without the DTD guard: {seen}"
    client = (ROOT / "src" / "twinning_kg" / "sources" / "linked_data_client.py").read_text(encoding="utf-8")
    # check-links reads partner graphs (files and HTTP) through the one client, XML checked first
    assert "untrusted_input.check_xml(body, source)" in client
    assert client.count("RdfFormat.RDF_XML") == 2  # the media type table and the check before parsing
    remote = (ROOT / "src" / "twinning_kg" / "query" / "remote_engine.py").read_text(encoding="utf-8")
    # every SPARQL XML answer of the store is checked before anything parses it: each
    # `XML` the code names is a checked body (the TSV re-parses read our own output)
    assert remote.count("QueryResultsFormat.XML") == remote.count("self._checked_xml(") == 2
    assert remote.count("ox.parse_query_results(") == 5  # 1 JSON; 4 of a checked body or our TSV
    assert "untrusted_input.check_xml(body, self.url)" in remote
    dumps = (ROOT / "src" / "twinning_kg" / "release" / "dumps.py").read_text(encoding="utf-8")
    parsed = set(re.findall(r"ox\.parse\([^)]*?RdfFormat\.(\w+)", dumps, re.DOTALL))
    assert parsed and parsed <= {"N_QUADS", "N_TRIPLES"}, parsed
    # the sitemap is XML we write (ElementTree builds it), never XML we read
    crawlers = ast.parse((ROOT / "src" / "twinning_kg" / "web" / "views" / "crawlers.py").read_text())
    calls = [n.func for n in ast.walk(crawlers) if isinstance(n, ast.Call)]
    called = {f.attr for f in calls if isinstance(f, ast.Attribute)}
    assert not called & {"parse", "fromstring", "XML", "iterparse", "XMLParser", "XMLPullParser"}, called


def test_a_remote_stores_xml_with_a_dtd_is_refused() -> None:
    """`serve --store`: a store's SPARQL XML answer with entity declarations never reaches
    Oxigraph's XML reader (which would expand them): 502 naming the refusal."""
    import asyncio

    import httpx

    from twinning_kg.config import Settings
    from twinning_kg.query.engine import QueryError, QueryRequest
    from twinning_kg.query.remote_engine import RemoteEngine

    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE sparql [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head><variable name="s"/></head>'
        b'<results><result><binding name="s"><literal>&b;</literal></binding></result></results></sparql>'
    )
    seen: list[str] = []

    def store(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["accept"])
        return httpx.Response(200, content=bomb, headers={"Content-Type": "application/sparql-results+xml"})

    async def ask() -> QueryError:
        client = httpx.AsyncClient(transport=httpx.MockTransport(store))
        engine = RemoteEngine("http://store.invalid/sparql", Settings(), client=client, graphs=("urn:g",))
        try:
            await engine.execute(QueryRequest("SELECT ?s WHERE { ?s ?p ?o }", client="127.0.0.1"))
        except QueryError as exc:
            return exc
        finally:
            await engine.close()
        raise AssertionError("the store's DTD was accepted")

    refusal = asyncio.run(ask())
    assert seen == ["application/sparql-results+xml"]
    assert refusal.status == 502 and "markup declaration" in refusal.message, refusal.message
