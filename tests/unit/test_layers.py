"""The package's layers form a DAG: a module imports only from its own package or from lower
layers (checked on the source: module-level and function-level imports alike).

    errors -> checks, inputs, embedding_types, hashing, jsonl, fusion, multi_vector -> text
    -> runtime, ingest -> ocr -> models -> embedder, reranker -> index -> eval -> training
    -> server, cli -> the package root
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "omniretrieve"

LAYERS: dict[str, int] = {
    "errors": 0,
    "checks": 1,
    "inputs": 1,
    "embedding_types": 1,
    "hashing": 1,
    "fusion": 1,
    "jsonl": 1,
    "multi_vector": 1,
    "text": 2,
    "runtime": 3,
    "ingest": 3,
    "ocr": 4,
    "models": 5,
    "embedder": 6,
    "reranker": 6,
    "index": 7,
    "eval": 8,
    "training": 9,
    "server": 10,
    "cli": 10,
    "__init__": 11,
}
SAME_LAYER = {("cli", "server")}
"""Imports allowed within one layer: the CLI starts the server."""


def unit_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_units(source: str) -> list[tuple[int, str]]:
    """(line, top-level unit) of every ``omniretrieve.X`` import in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "omniretrieve" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def violations(source: str, unit: str) -> list[str]:
    problems = []
    for line, target in imported_units(source):
        if target == unit or target not in LAYERS:
            continue
        if LAYERS[target] < LAYERS[unit] or (unit, target) in SAME_LAYER:
            continue
        problems.append(f"line {line}: {unit} (layer {LAYERS[unit]}) imports {target} "
                        f"(layer {LAYERS[target]})")  # fmt: skip
    return problems


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(p) for p in PACKAGE.rglob("*.py")}
    assert units - set(LAYERS) == set()


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_imports_follow_the_layers(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), unit_of(path)) == []


def test_a_forbidden_import_is_caught() -> None:
    """The check itself: an index module importing eval, or models importing index, fails."""
    assert violations("from omniretrieve.eval.datasets import read_jsonl\n", "index")
    assert violations("def f():\n    from omniretrieve.index import sparse\n", "models")
    assert violations("import omniretrieve.server.app\n", "eval")
    assert not violations("from omniretrieve.text.bm25 import BM25Index\n", "models")
    assert not violations("from omniretrieve.server.app import create_app\n", "cli")


SHARED = {"builders", "conftest"}


def test_tests_share_code_only_through_builders() -> None:
    """A test module imports no other test module; shared helpers live in tests/builders."""
    tests_root = PACKAGE.parents[1] / "tests"
    offenders = []
    for path in sorted(tests_root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] == "tests" and len(parts) > 1 and parts[1] not in SHARED:
                    offenders.append(f"{path.relative_to(tests_root)}:{node.lineno}")
    assert offenders == []


def family_modules() -> dict[str, Path]:
    """Model modules that declare a family (a module-level ``FAMILY``), by module name."""
    found = {}
    for path in sorted((PACKAGE / "models").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "FAMILY" for t in targets):
                found[f"omniretrieve.models.{path.stem}"] = path
    return found


def family_imports(source: str, families: set[str]) -> list[str]:
    """Family modules that ``source`` imports (families share code through the base modules,
    never through each other)."""
    imported = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
        elif isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
    return sorted(name for name in imported if name in families)


def test_model_families_do_not_import_each_other() -> None:
    families = family_modules()
    assert len(families) >= 8
    offenders = {
        name: imports
        for name, path in families.items()
        if (imports := family_imports(path.read_text(encoding="utf-8"), set(families) - {name}))
    }
    assert offenders == {}


def test_a_family_importing_another_is_caught() -> None:
    families = set(family_modules())
    source = "from omniretrieve.models.decoder_embedder import last_token\n"
    assert family_imports(source, families) == ["omniretrieve.models.decoder_embedder"]
    assert family_imports("from omniretrieve.models.pooling import pool\n", families) == []


def kind_comparisons(source: str) -> list[int]:
    """Lines where ``source`` compares something's ``.kind`` (a branch on a dataset's kind)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Attribute) and o.attr == "kind" for o in operands):
                lines.append(node.lineno)
    return lines


def test_evaluation_never_branches_on_a_dataset_kind() -> None:
    """What differs between dataset layouts lives in eval/layouts/<name>.py; the rest of eval
    asks the dataset's layout instead of comparing kinds."""
    offenders = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted((PACKAGE / "eval").rglob("*.py"))
        if "layouts" not in path.parts
        and (found := kind_comparisons(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
    assert kind_comparisons('if dataset.kind == "winoground":\n    pass\n') == [1]


def test_every_layout_module_declares_its_layout() -> None:
    from omniretrieve.eval.layouts import LAYOUT_MODULES, Layout, layouts

    found = layouts()
    assert len(found) == len(LAYOUT_MODULES)
    assert all(isinstance(layout, Layout) for layout in found)
    assert len({layout.name for layout in found}) == len(found)
    modules = {p.stem for p in (PACKAGE / "eval" / "layouts").glob("*.py")} - {"__init__"}
    assert {name.rsplit(".", 1)[1] for name in LAYOUT_MODULES} == modules


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def module_imports(source: str, modules: set[str]) -> set[str]:
    """The package's modules ``source`` imports (module level, in functions and under
    TYPE_CHECKING alike): ``from a.b import c`` counts ``a.b.c`` when that is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found |= {n for n in names if n in modules} or (
                {node.module} if node.module in modules else set()
            )
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {
        name: module_imports(path.read_text(encoding="utf-8"), modules) - {name}
        for name, path in paths.items()
    }


def test_no_two_modules_import_each_other() -> None:
    """Issue 28, item 11: a type or function both need lives in a module both import."""
    graph = import_graph()
    circles = sorted(
        f"{a} <-> {b}" for a, targets in graph.items() for b in targets if a < b and a in graph[b]
    )
    assert circles == []


COLLECTION_FACADE_LINES = 400
"""The architecture's bound on index/collection.py (the public Collection API): what is not
that API lives in the modules that own it."""


def test_the_collection_facade_stays_small() -> None:
    lines = (PACKAGE / "index" / "collection.py").read_text(encoding="utf-8").count("\n")
    assert lines <= COLLECTION_FACADE_LINES
