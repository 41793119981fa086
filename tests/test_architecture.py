"""The house rules of DESIGN.md that code can check: the engine and the client never import Flask."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fhir_plugin"
FLASK_FREE = sorted(
    [*(PACKAGE / "terminology").glob("*.py"), *(PACKAGE / "content").glob("*.py"), *(PACKAGE / "txtests").glob("*.py"),
     PACKAGE / "codec.py", PACKAGE / "fhirversions.py", PACKAGE / "config.py", PACKAGE / "conformance.py",
     PACKAGE / "client.py"]
)


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level and node.module:
            names.add("." + node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", FLASK_FREE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_never_imports_flask_or_the_web_layer(path):
    imported = imported_modules(path)
    assert not imported & {"flask", "werkzeug", ".web", ".extension", ".app"}, imported


def test_the_checker_sees_flask_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from flask import Flask\nfrom ..web import views\n")
    assert imported_modules(sample) == {"flask", ".web"}
