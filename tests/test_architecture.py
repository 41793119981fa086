"""The house rules that code can check, read from the source (docs/design.md draws the layers):

- every import in fhir_plugin/ (function-level and TYPE_CHECKING ones included) points down the
  layers or stays inside its own, and no two modules import each other, however indirectly;
- the engine imports only itself, fhirversions and the standard library (and re2 in
  terminology/patterns.py only);
- no module imports another module's _private names;
- no Flask (or Werkzeug) below the web layer, and none in the client;
- only config.py reads the environment, and every FHIR_PLUGIN_* name in the code is a setting of
  its table, each of which the README's configuration table lists.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fhir_plugin.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fhir_plugin"

# The layers, bottom up: a module may import from a lower layer or its own, never from a higher one
# or from another layer of the same rank (content and render know nothing of each other).
LAYERS: dict[str, int] = {"foundation": 0, "engine": 1, "settings": 2, "content": 3, "render": 3, "runtime": 4,
                          "web": 5, "client": 5, "server": 6, "errors": 6, "txtests": 6, "top": 7}
# The top-level module or package -> its layer.
LAYER_OF: dict[str, str] = {
    "version": "foundation", "fhirversions": "foundation", "terminology": "engine", "config": "settings",
    "content": "content", "render": "render", "runtime": "runtime",
    "web": "web", "ui": "web", "extension": "web", "app": "web", "client": "client",
    "server": "server", "startup": "server", "errors": "errors", "txtests": "txtests",
    "cli": "top", "cli_content": "top", "cli_operations": "top", "cli_pairs": "top", "cli_reload": "top", "reloading": "server", "nginx_front": "server", "__main__": "top", "__init__": "top",
}
# Beside itself, fhirversions and the standard library: third-party modules, and the engine modules
# that may import them (None: any). re2 is untyped: one module wraps it in types.
ENGINE_MAY_IMPORT: dict[str, set[str] | None] = {"re2": {"terminology.patterns"}}
FLASK = {"flask", "werkzeug"}


def module_name(path: Path) -> str:
    """fhir_plugin/web/views.py -> "web.views"; a package's __init__ -> "web" (the top: "__init__")."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    return LAYER_OF[module.split(".")[0]]


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # a module of ours ("terminology.models") or an outside top-level name ("flask")
    ours: bool
    names: tuple[str, ...]  # the names imported from it


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The module of ours that `from <node.module> import ...` reads (relative or absolute)."""
    if node.level == 0:
        return node.module.removeprefix("fhir_plugin").lstrip(".") if node.module else ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "__init__":
        package = []
    base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                ours = alias.name == "fhir_plugin" or alias.name.startswith("fhir_plugin.")
                target = alias.name.removeprefix("fhir_plugin").lstrip(".") or "__init__" if ours else alias.name
                found.append(Import(node.lineno, target if ours else alias.name.split(".")[0], ours, ()))
        elif isinstance(node, ast.ImportFrom):
            ours = node.level > 0 or (node.module or "").split(".")[0] == "fhir_plugin"
            names = tuple(alias.name for alias in node.names)
            if not ours:
                found.append(Import(node.lineno, (node.module or "").split(".")[0], False, names))
                continue
            base = _resolve(module, path, node) or "__init__"
            for name in names:  # `from . import params` imports a module, `from .x import y` a name of x
                submodule = f"{base}.{name}" if base != "__init__" else name
                if submodule in MODULES:
                    found.append(Import(node.lineno, submodule, True, ()))
                else:
                    found.append(Import(node.lineno, base, True, (name,)))
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_the_import_reader_resolves_every_import_of_ours():
    unknown = {(m, i.target) for m, imports in GRAPH.items() for i in imports if i.ours and i.target not in MODULES}
    assert unknown == set()
    assert {i.target for i in GRAPH["web.views"] if i.ours} >= {"web.params", "render.errors", "runtime.live",
                                                                "terminology.service"}
    assert {i.target for i in GRAPH["terminology.validate.codings"] if i.ours} >= {
        "terminology.entries", "terminology.validate.context"}


def test_every_module_has_a_layer():
    assert {m.split(".")[0] for m in MODULES} <= set(LAYER_OF)
    assert set(LAYER_OF.values()) == set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    own = layer_of(module)
    upward = [(i.line, i.target) for i in GRAPH[module]
              if i.ours and layer_of(i.target) != own and LAYERS[layer_of(i.target)] >= LAYERS[own]]
    assert upward == []


def _engine_may_import(module: str, target: str) -> bool:
    if target not in ENGINE_MAY_IMPORT:
        return False
    importers = ENGINE_MAY_IMPORT[target]
    return importers is None or module in importers


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) == "engine"))
def test_the_engine_imports_only_itself_and_the_standard_library(module):
    outside = {(i.line, i.target) for i in GRAPH[module] if i.ours and i.target.split(".")[0] not in (
        "terminology", "fhirversions")}
    third_party = {(i.line, i.target) for i in GRAPH[module] if not i.ours and i.target not in sys.stdlib_module_names
                   and i.target != "__future__" and not _engine_may_import(module, i.target)}
    assert outside | third_party == set()


def test_only_the_pattern_module_imports_re2():
    """Every regular expression a request or content supplies is compiled by RE2 in one place."""
    assert {m for m, imports in GRAPH.items() for i in imports if not i.ours and i.target == "re2"} == {
        "terminology.patterns"}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges = {m: sorted({i.target for i in GRAPH[m] if i.ours and i.target != m}) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    return found


def test_no_two_modules_import_each_other():
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "fhirversions", [*GRAPH["fhirversions"], Import(1, "terminology.models", True, ())])
    monkeypatch.setitem(GRAPH, "terminology.models", [Import(1, "fhirversions", True, ())])
    assert ["fhirversions", "terminology.models"] in _cycles()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_private_names(module):
    private = [(i.line, i.target, name) for i in GRAPH[module] if i.ours for name in i.names
               if name.startswith("_") and not name.startswith("__")]
    assert private == []


FLASK_FREE = sorted(m for m in MODULES if LAYERS[layer_of(m)] < LAYERS["web"] or layer_of(m) in ("client", "errors"))


@pytest.mark.parametrize("module", FLASK_FREE)
def test_no_flask_below_the_web_layer_nor_in_the_client(module):
    assert {i.target for i in GRAPH[module] if not i.ours} & FLASK == set()
    assert {i.target for i in GRAPH[module] if i.ours and layer_of(i.target) == "web"} == set()


def test_the_import_reader_sees_function_level_and_type_checking_imports(tmp_path, monkeypatch):
    sample = PACKAGE / "terminology" / "models.py"
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..web import views\n" \
             "def f():\n    from flask import Flask\n    from ._x import _y\n"
    monkeypatch.setitem(MODULES, "terminology.models", tmp_path / "models.py")
    (tmp_path / "models.py").write_text(source)
    found = {(i.target, i.names) for i in imports_of("terminology.models")}
    monkeypatch.setitem(MODULES, "terminology.models", sample)
    assert ("web.views", ()) in found and ("flask", ("Flask",)) in found
    assert any(names == ("_y",) for _, names in found)


# --- settings ----------------------------------------------------------------------------------

SETTING_NAMES = {setting.name for setting in SETTINGS}
_SETTING_TEXT = re.compile(r"FHIR_PLUGIN_[A-Z][A-Z_]*[A-Z]")


def _environment_reads(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "environb", "putenv"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                a.name in ("environ", "getenv", "environb") for a in node.names):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "config"))
def test_only_config_reads_the_environment(module):
    assert _environment_reads(ast.parse(MODULES[module].read_text(encoding="utf-8"))) == []


def test_the_environment_check_sees_a_read():
    assert _environment_reads(ast.parse("import os\nx = os.environ.get('FHIR_PLUGIN_PORT')\n")) == [2]
    assert _environment_reads(ast.parse("from os import getenv\n")) == [1]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_setting_named_in_the_code_is_in_the_table(module):
    named = set(_SETTING_TEXT.findall(MODULES[module].read_text(encoding="utf-8")))
    assert named - SETTING_NAMES == set()


def test_every_setting_has_a_default_a_type_and_help():
    for setting in SETTINGS:
        assert isinstance(setting.default, setting.type) and setting.help, setting


def test_the_readme_configuration_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `(FHIR_PLUGIN_[A-Z_]+)` \|", section, re.M))
    assert rows == SETTING_NAMES
