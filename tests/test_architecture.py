"""The package layout keeps the data flow one way: sources -> graph -> checks -> release ->
query -> web -> commands, with `config` and `vocab` as the base everything may use.

Read from the source with `ast` (nothing is imported), every `import` statement counts,
also those inside functions and `if TYPE_CHECKING:` blocks:
- no import cycles among the project's modules;
- a module imports only modules of its own stage or of lower ones;
- the project's modules are imported plainly: no `importlib`, no `__import__`, no
  `except ImportError` (a missing module is a bug, never an optional feature);
- every module name is unique in the package, so a name says one job.
The checker is tested on small planted violations too, so these tests can fail.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = "twinning_kg"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE
# Stage of each top-level name: a module may import its own stage and lower ones only.
BASE = 0
STAGES = {
    "__init__": BASE,  # the package itself (its version)
    "config": BASE,
    "vocab": BASE,
    "project": BASE,  # twinning-kg.toml -> Settings
    "sources": 1,
    "graph": 2,
    "checks": 3,
    "release": 4,
    "query": 5,
    "web": 6,
    "commands": 7,
    "cli": 8,
    "__main__": 9,
}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join([PACKAGE, *parts])


def read_modules(root: Path = SOURCE) -> dict[str, ast.Module]:
    """Module name -> parsed source, for every .py file of the package."""
    return {
        module_name(path, root): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(root.rglob("*.py"))
    }


def imports(name: str, tree: ast.Module, modules: dict[str, ast.Module]) -> dict[str, int]:
    """Project modules `name` imports -> line of the first such import.

    `from a.b import c` imports `a.b.c` when that is a module, else `a.b`; relative
    imports are resolved against the importing module's package.
    """
    package = name if _has_children(name, modules) else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                targets.append(child if child in modules else base)
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                while target not in modules and "." in target:
                    target = target.rpartition(".")[0]
                if target != name:
                    found.setdefault(target, node.lineno)
    return found


def _has_children(name: str, modules: dict[str, ast.Module]) -> bool:
    return any(other.startswith(name + ".") for other in modules)


def import_graph(modules: dict[str, ast.Module]) -> dict[str, dict[str, int]]:
    return {name: imports(name, tree, modules) for name, tree in modules.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def stage(name: str) -> int | None:
    top = name.split(".")[1] if "." in name else "__init__"
    return STAGES.get(top)


def stage_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    """`module:line imports target` for every import of a higher stage (or of no stage)."""
    problems = []
    for name, targets in sorted(graph.items()):
        own = stage(name)
        if own is None:
            problems.append(f"{name} belongs to no stage: move it into one of {sorted(STAGES)}")
            continue
        for target, line in sorted(targets.items()):
            theirs = stage(target)
            if theirs is None or theirs > own:
                problems.append(f"{name}:{line} imports {target} (a later stage)")
    return problems


def hidden_imports(modules: dict[str, ast.Module]) -> list[str]:
    """importlib, __import__ and `except ImportError` anywhere in the package."""
    problems = []
    for name, tree in sorted(modules.items()):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "importlib" for a in node.names):
                problems.append(f"{name}:{node.lineno} imports importlib")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "importlib":
                problems.append(f"{name}:{node.lineno} imports from importlib")
            elif isinstance(node, ast.Name) and node.id == "__import__":
                problems.append(f"{name}:{node.lineno} uses __import__")
            elif isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
                if any(isinstance(c, ast.Name) and c.id in IMPORT_ERRORS for c in caught):
                    problems.append(f"{name}:{node.lineno} catches an import error")
    return problems


def duplicate_names(modules: dict[str, ast.Module]) -> dict[str, list[str]]:
    """Module file names (not packages' __init__) used more than once in the package."""
    leaf = {name: name.rpartition(".")[2] for name in modules if name != PACKAGE}
    leaf = {name: short for name, short in leaf.items() if not _has_children(name, modules)}
    counts = Counter(leaf.values())
    return {
        short: sorted(name for name, s in leaf.items() if s == short)
        for short, count in counts.items()
        if count > 1 and short != "__main__"
    }


# ------------------------------------------------------------------ the package itself

MODULES = read_modules()
GRAPH = import_graph(MODULES)


def test_the_package_is_read() -> None:
    """The checks below see the real package (a wrong path would make them pass vacuously)."""
    assert {"twinning_kg.config", "twinning_kg.release.builder", "twinning_kg.query.engine",
            "twinning_kg.web.app", "twinning_kg.cli"} <= set(MODULES)
    assert "twinning_kg.release.catalog" in GRAPH["twinning_kg.release.builder"]
    assert "twinning_kg.commands.serve" in GRAPH["twinning_kg.cli"]


def test_no_import_cycles() -> None:
    assert cycles(GRAPH) == []


def test_each_stage_imports_only_itself_and_lower_stages() -> None:
    assert stage_violations(GRAPH) == []


def test_project_modules_are_imported_plainly() -> None:
    assert hidden_imports(MODULES) == []


def test_every_module_name_is_unique() -> None:
    assert duplicate_names(MODULES) == {}


# ------------------------------------------------------------------ the checker on planted faults


def _planted(tmp_path: Path, files: dict[str, str]) -> dict[str, ast.Module]:
    for relative, text in {"__init__.py": "", **files}.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return read_modules(tmp_path)


def test_checker_finds_a_cycle(tmp_path: Path) -> None:
    modules = _planted(tmp_path, {
        "graph/__init__.py": "",
        "graph/a.py": "from twinning_kg.graph import b\n",
        "graph/b.py": "def f():\n    from twinning_kg.graph.a import x\n",
        "graph/c.py": "from . import a\n",
    })
    assert cycles(import_graph(modules)) == [["twinning_kg.graph.a", "twinning_kg.graph.b"]]


def test_checker_finds_an_import_of_a_later_stage(tmp_path: Path) -> None:
    modules = _planted(tmp_path, {
        "config.py": "",
        "graph/__init__.py": "",
        "graph/derive.py": (
            "from twinning_kg.config import X\nfrom twinning_kg.release.builder import build\n"
        ),
        "release/__init__.py": "",
        "release/builder.py": "from twinning_kg.graph import derive\n",
        "helpers.py": "",
    })
    assert stage_violations(import_graph(modules)) == [
        "twinning_kg.graph.derive:2 imports twinning_kg.release.builder (a later stage)",
        f"twinning_kg.helpers belongs to no stage: move it into one of {sorted(STAGES)}",
    ]


def test_checker_finds_hidden_imports(tmp_path: Path) -> None:
    modules = _planted(tmp_path, {
        "cli.py": (
            "import importlib\n"
            "try:\n    from twinning_kg import web\nexcept (OSError, ModuleNotFoundError):\n    web = None\n"
            "mod = __import__('twinning_kg.web')\n"
        ),
    })
    assert hidden_imports(modules) == [
        "twinning_kg.cli:1 imports importlib",
        "twinning_kg.cli:4 catches an import error",
        "twinning_kg.cli:6 uses __import__",
    ]


def test_checker_finds_a_name_used_twice(tmp_path: Path) -> None:
    modules = _planted(tmp_path, {
        "checks/__init__.py": "", "checks/audit.py": "", "web/__init__.py": "", "web/audit.py": "",
    })
    expected = {"audit": ["twinning_kg.checks.audit", "twinning_kg.web.audit"]}
    assert duplicate_names(modules) == expected
