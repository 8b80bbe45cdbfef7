"""The project's import graph: no circle among ``rag`` modules, and ``rag`` never imports ``ui``.

Every ``import`` statement counts, wherever it stands: at module level, under ``TYPE_CHECKING``
and inside functions (an import inside a function only hides a circle until the function runs).
An edge goes to the most specific module named: ``from rag.store import base`` is an edge to
``rag.store.base``, ``from rag.store import Hit`` one to ``rag.store`` (its ``__init__``).
Parent packages executed on the way are not edges, as in pydeps and import-linter.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rag", "ui")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports anywhere in its file (module and function level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(nearest(alias.name))
        elif isinstance(node, ast.ImportFrom):
            source = _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else nearest(source))
    targets.discard(None)
    targets.discard(module)
    return targets


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    files = module_files(root)
    known = set(files)
    return {module: imports_of(module, path, known) for module, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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


def _is_rag(module: str) -> bool:
    return module == "rag" or module.startswith("rag.")


def test_no_import_circle_among_rag_modules():
    """Guards against a circle kept from breaking only by an import inside a function."""
    graph = import_graph()
    rag_graph = {m: {t for t in targets if _is_rag(t)} for m, targets in graph.items() if _is_rag(m)}
    found = circles(rag_graph)
    assert found == [], "import circles among rag modules (move the shared piece down):\n" + "\n".join(
        " <-> ".join(component) for component in found
    )


def test_rag_never_imports_ui():
    """Guards against the library reaching into the UI (``ui`` calls ``rag``, never the other way)."""
    graph = import_graph()
    wrong = sorted(
        f"{m} -> {t}" for m, targets in graph.items() if _is_rag(m) for t in targets if t == "ui" or t.startswith("ui.")
    )
    assert wrong == []


def test_the_graph_sees_function_level_relative_and_submodule_imports(tmp_path):
    """Guards against a checker blind to the imports that hide circles."""
    pkg = tmp_path / "rag"
    (pkg / "sub").mkdir(parents=True)
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from rag.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\nthing = 1\n"
    )
    (pkg / "c.py").write_text("import ui\nfrom . import a\n")
    graph = import_graph(tmp_path)
    assert graph["rag.a"] == {"rag.sub.b"}
    assert graph["rag.sub"] == {"rag.sub.b"}
    assert graph["rag.sub.b"] == {"rag.a"}
    assert graph["rag.c"] == {"ui", "rag.a"}
    assert circles(graph) == [["rag.a", "rag.sub.b"]]


_IMPORT_EACH_FIRST = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "rag" or m.startswith("rag.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {exc!r}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_rag_module_imports_first():
    """Guards against a circle through a package's ``__init__`` (not an edge above): importing a submodule runs
    its package first, so ``rag.answering.evidence`` -> ``rag.retrieval.keyword`` ran ``rag/retrieval/__init__``, whose
    retrievers imported ``rag.answering.evidence`` back, half-initialised. Each module is imported first, on its own."""
    import subprocess
    import sys

    modules = sorted(m for m in module_files() if _is_rag(m) and not m.endswith(".__main__"))  # __main__ runs the CLI
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_FIRST, *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
