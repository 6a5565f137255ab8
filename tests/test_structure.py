"""The shape of the code: no import cycles, no module reaching into another module's private
names, and files and functions a reader can hold in their head.

Every ``.py`` file under the packages in ``PACKAGES`` is parsed with ``ast`` (nothing is
imported). Imports anywhere in a file count, inside functions too: a cycle hidden in a
function body is still a cycle.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["infer", "models"]
MAX_LINES = 450
MAX_FUNCTION_LINES = 80  # from the ``def`` line to the end, the docstring not counted


class Module(NamedTuple):
    name: str  # dotted, e.g. "models.generative.vae"; a package is named by its folder
    path: Path
    file: str  # the path relative to the root, for messages
    is_package: bool
    tree: ast.Module


def find_modules(root: Path, packages: list[str]) -> dict[str, Module]:
    """Every module under ``root/<package>`` for each of ``packages``, by dotted name."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            tree = ast.parse(path.read_text(), filename=str(path))
            file = path.relative_to(root).as_posix()
            modules[name] = Module(name, path, file, is_package, tree)
    return modules


@functools.cache
def project_modules() -> dict[str, Module]:
    """The modules of ``PACKAGES``, parsed once for the checks below (2 s a parse here)."""
    return find_modules(ROOT, PACKAGES)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _source(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module name that ``from <source> import ...`` reads from."""
    if node.level == 0:
        return node.module
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known_prefix(name: str, modules: dict[str, Module]) -> str | None:
    """The longest dotted prefix of ``name`` that is one of ``modules``."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


class Import(NamedTuple):
    target: str  # the project module imported
    name: str | None  # the name taken from it (``from target import name``), if any
    binds: str | None  # the local name bound to the module ``target``, if any
    line: int


def imports(module: Module, modules: dict[str, Module]) -> Iterator[Import]:
    """The project modules ``module`` imports, anywhere in the file. ``from a import b``
    imports the submodule ``a.b`` when there is one, else the name ``b`` of ``a``."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known_prefix(alias.name, modules)
                if target is None:
                    continue
                if alias.asname:  # import a.b as m: m is a.b
                    yield Import(target, None, alias.asname, node.lineno)
                else:  # import a.b: a is bound, a.b is reached through it
                    top = alias.name.split(".")[0]
                    yield Import(target, None, top if top in modules else None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = _source(module, node)
            for alias in node.names:
                binds = alias.asname or alias.name
                if f"{source}.{alias.name}" in modules:
                    yield Import(f"{source}.{alias.name}", None, binds, node.lineno)
                elif (target := _known_prefix(source, modules)) is not None:
                    yield Import(target, alias.name, None, node.lineno)


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    graph = {name: set() for name in modules}
    for name, module in modules.items():
        for edge in imports(module, modules):
            if edge.target != name:
                graph[name].add(edge.target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or ``None`` when the graph has none."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; ``None`` for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)) is not None:
        return base + [node.attr]
    return None


def private_uses(module: Module, modules: dict[str, Module]) -> Iterator[str]:
    """Where ``module`` takes a private name (``_name``) of another project module: by
    ``from a import _name`` or by ``a._name`` on an imported module ``a``."""
    bound = {}  # local name -> the project module it is bound to
    for edge in imports(module, modules):
        if edge.binds is not None:
            bound[edge.binds] = edge.binds if edge.binds in modules else edge.target
        if edge.name is not None and _is_private(edge.name) and edge.target != module.name:
            yield f"{module.file}:{edge.line}: imports {edge.name} from {edge.target}"
    for node in ast.walk(module.tree):
        if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
            continue
        chain = _dotted(node.value)
        if chain is None or chain[0] not in bound:
            continue
        owner = bound[chain[0]]
        for part in chain[1:]:
            owner = f"{owner}.{part}" if f"{owner}.{part}" in modules else owner
        if owner != module.name:
            yield f"{module.file}:{node.lineno}: uses {owner}.{node.attr}"


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function from its ``def`` line to its last, less those of its docstring."""
    lines = node.end_lineno - node.lineno + 1
    if ast.get_docstring(node, clean=False) is not None:
        lines -= node.body[0].end_lineno - node.body[0].lineno + 1
    return lines


def long_functions(module: Module, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``file:line name (n lines)`` for each function or method of ``module``, nested ones
    included, longer than ``limit`` lines (:func:`function_lines`), in order of line."""
    functions = (
        node
        for node in ast.walk(module.tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    )
    return [
        f"{module.file}:{node.lineno} {node.name} ({n} lines)"
        for node in sorted(functions, key=lambda node: node.lineno)
        if (n := function_lines(node)) > limit
    ]


def test_no_import_cycles():
    cycle = find_cycle(import_graph(project_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_takes_another_modules_private_names():
    modules = project_modules()
    found = [use for module in modules.values() for use in private_uses(module, modules)]
    assert not found, "private names used outside their module:\n" + "\n".join(found)


def test_no_file_is_longer_than_the_limit():
    modules = project_modules()
    lengths = {m.file: len(m.path.read_text().splitlines()) for m in modules.values()}
    long = [f"{file}: {n} lines" for file, n in lengths.items() if n > MAX_LINES]
    assert not long, f"files over {MAX_LINES} lines (split them along their seams):\n" + "\n".join(
        long
    )


def test_no_function_is_longer_than_the_limit():
    modules = project_modules()
    long = [entry for module in modules.values() for entry in long_functions(module)]
    assert not long, (
        f"functions over {MAX_FUNCTION_LINES} lines, docstrings not counted (split them along "
        "their seams into helpers):\n" + "\n".join(long)
    )


def test_every_module_of_the_package_is_on_the_architecture_page():
    """docs/architecture.md's map had fallen 25 modules behind the package."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(p.stem for p in (ROOT / "infer").glob("*.py") if p.stem != "__init__")
    missing = [name for name in modules if f"{name}.py" not in page]
    assert not missing, f"modules not named in docs/architecture.md: {missing}"


def test_the_checks_find_what_they_look_for(tmp_path):
    """A made-up package with a cycle through a function-level relative import, a private
    name taken by ``from ... import`` and one reached through a module attribute."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n\n_hidden = 1\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (package / "c.py").write_text("import pkg.a\n\ndef g():\n    return pkg.a._hidden\n")
    (package / "d.py").write_text("from pkg.a import _hidden\nfrom pkg import c as see\n")
    modules = find_modules(tmp_path, ["pkg"])
    assert find_cycle(import_graph(modules)) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    found = [use for module in modules.values() for use in private_uses(module, modules)]
    assert found == ["pkg/c.py:4: uses pkg.a._hidden", "pkg/d.py:1: imports _hidden from pkg.a"]
    del modules["pkg.c"]  # break the cycle
    assert find_cycle(import_graph(modules)) is None


def test_the_length_check_finds_long_functions(tmp_path):
    """A planted 90-line function, and one nested in a method (the method is long with it), are
    found; a function of 100 lines, 20 of them its docstring, is not."""

    def statements(indent: int, count: int) -> str:
        return "".join(f"{' ' * indent}x{i} = {i}\n" for i in range(count))

    docstring = '    """A docstring\n' + "    that goes on.\n" * 18 + '    """\n'
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "long.py").write_text(
        "def planted():\n"  # line 1
        + statements(4, 89)
        + "\n\ndef documented():\n"  # line 93
        + docstring
        + statements(4, 79)
        + "\n\nclass Holder:\n    def method(self):\n        def inner():\n"  # 195, 196, 197
        + statements(12, 89)
    )
    modules = find_modules(tmp_path, ["pkg"])
    documented = modules["pkg.long"].tree.body[1]
    assert documented.end_lineno - documented.lineno + 1 == 100
    assert function_lines(documented) == MAX_FUNCTION_LINES
    assert long_functions(modules["pkg.long"]) == [
        "pkg/long.py:1 planted (90 lines)",
        "pkg/long.py:196 method (91 lines)",
        "pkg/long.py:197 inner (90 lines)",
    ]
    assert long_functions(modules["pkg"]) == []
