"""The package layout: docs/architecture.md maps every package folder and states the layers;
every import runs down them (none back up, none sideways, no circle), so a shared concept sits one
floor below its users."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "avtoolkit"

def _layers() -> list[set[str]]:
    """The layers docs/architecture.md states under '## Layers', top first: one line each."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"## Layers.*?```text\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```text block under '## Layers'"
    return [set(line.split()) for line in block.group(1).splitlines() if line.strip()]


LAYERS = _layers()
#: top-level package or module of avtoolkit -> its layer's index (0 = the top).
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _avtoolkit_imports(path: Path) -> set[str]:
    """Every ``avtoolkit...`` module named by an import statement anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; the layout rules read absolute ones"
            names.add(node.module or "")
    return {n for n in names if n == "avtoolkit" or n.startswith("avtoolkit.")}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _top(name: str) -> str:
    """``avtoolkit.engine.run`` -> ``engine``; the root package itself -> ``""``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_the_layers_name_every_package_once() -> None:
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _files()} - {"__init__"}
    listed = [name for layer in LAYERS for name in layer]
    assert len(listed) == len(set(listed)), f"named twice in docs/architecture.md's layers: {listed}"
    assert tops == set(listed), (f"not in the layers: {sorted(tops - set(listed))}; "
                                 f"in the layers but not in avtoolkit/: {sorted(set(listed) - tops)}")


def test_every_import_runs_down_the_layers() -> None:
    """A module imports only packages on lower lines, at module level or inside a function.

    The root package (``avtoolkit/__init__.py``, which names the public API lazily) is above
    every layer, and importing it (for ``__version__``) is no edge: Python runs it first anyway.
    """
    wrong = []
    for f in _files():
        here = _top(_module_name(f))
        if not here:
            continue
        for name in sorted(_avtoolkit_imports(f)):
            there = _top(name)
            if there and there != here and RANK[there] <= RANK[here]:
                side = "sideways" if RANK[there] == RANK[here] else "back up"
                wrong.append(f"{_module_name(f)} imports {name} ({side}: {there} is not below {here})")
    assert not wrong, "\n".join(wrong)


def test_no_circle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for f in _files():
        here = _top(_module_name(f))
        if not here:
            continue
        graph.setdefault(here, set()).update(t for t in map(_top, _avtoolkit_imports(f)) if t and t != here)
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for dep in sorted(graph.get(node, ())):
            assert dep not in path, "package circle: " + " -> ".join(path[path.index(dep):] + [dep])
            if dep not in done:
                visit(dep, path + [dep])
        done.add(node)

    for node in sorted(graph):
        visit(node, [node])


def _folder_map() -> set[str]:
    """The folders the ```text block under '## Folder map' in docs/architecture.md names, as paths."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"## Folder map\s+```text\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```text block under '## Folder map'"
    stack: list[tuple[int, str]] = []
    folders = set()
    for line in block.group(1).splitlines():
        match = re.match(r"( *)(\S+)/(\s|$)", line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([name for _, name in stack] + [match.group(2)])
        stack.append((indent, match.group(2)))
        folders.add(path)
    return folders


def test_the_folder_map_lists_every_package_folder_and_no_other() -> None:
    packages = {p.parent.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("__init__.py")}
    documented = {f for f in _folder_map() if f == "avtoolkit" or f.startswith("avtoolkit/")}
    assert "avtoolkit/models/encoders" in documented  # the parser reads nesting
    assert not packages - documented, f"missing from docs/architecture.md's folder map: {sorted(packages - documented)}"
    assert not documented - packages, f"in the folder map but not a package: {sorted(documented - packages)}"


#: inference modules from the bottom up: none imports a module above it (decoding stands alone).
INFERENCE_LAYERS = ("runtime", "export", "quantize", "transcriber", "deploy")


@pytest.mark.parametrize("level", range(len(INFERENCE_LAYERS)))
def test_inference_modules_import_downwards_only(level: int) -> None:
    module = INFERENCE_LAYERS[level]
    above = {f"avtoolkit.inference.{m}" for m in INFERENCE_LAYERS[level + 1:]}
    wrong = sorted(_avtoolkit_imports(PACKAGE / "inference" / f"{module}.py") & above)
    assert not wrong, f"avtoolkit.inference.{module} imports {wrong}, which sit above it"


def _top_level_imports(path: Path) -> set[str]:
    """``avtoolkit`` modules imported when the file is imported (not those inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.startswith("avtoolkit.")}


def test_no_module_level_import_circle() -> None:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    # An edge to one's own parent package is no circle: Python imports the parent first anyway.
    graph = {name: sorted(n for n in _top_level_imports(path)
                          if n in modules and n != name and not name.startswith(n + "."))
             for name, path in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in graph[name]:
            if state.get(dep) == 1:
                circle = path[path.index(dep):] + [dep]
                pytest.fail("import circle: " + " -> ".join(circle))
            if dep not in state:
                visit(dep, path + [dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


CORPORA = sorted(p.parent.name for p in (PACKAGE / "datasets").glob("*/__init__.py"))


@pytest.mark.parametrize("corpus", CORPORA)
def test_no_corpus_folder_imports_another(corpus: str) -> None:
    """What corpora share lives in ``data/``, ``roi/``, ``store/`` , ``datasets/_prepare.py`` or ``datasets/_sentences.py``, not in a sibling."""
    others = [f"avtoolkit.datasets.{c}" for c in CORPORA if c != corpus]
    files = sorted((PACKAGE / "datasets" / corpus).rglob("*.py"))
    wrong = [f"{_module_name(f)} imports {name}" for f in files for name in sorted(_avtoolkit_imports(f))
             if any(_within(name, other) for other in others)]
    assert not wrong, "\n".join(wrong)
