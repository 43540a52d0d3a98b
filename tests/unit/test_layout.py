"""The layout rules of issue 8, checked on the tree.

* ``tests/`` is a package tree: every folder has an ``__init__.py`` and helpers are imported by
  package path; no test edits ``sys.path``.
* ``tests/unit/<name>/`` mirrors ``stream/<name>/``: a unit-test folder names a real package.
"""

from __future__ import annotations

import ast

from stream.settings import REPO_ROOT

TESTS = REPO_ROOT / "tests"


def test_every_test_folder_is_a_package():
    folders = [d for d in TESTS.rglob("*") if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))]
    assert len(folders) > 5
    assert [str(d.relative_to(REPO_ROOT)) for d in folders if not (d / "__init__.py").exists()] == []


def _touches_sys_path(tree: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Attribute) and n.attr == "path" and isinstance(n.value, ast.Name) and n.value.id == "sys"
        for n in ast.walk(tree)
    )


def test_no_test_edits_sys_path():
    bad = [
        str(p.relative_to(REPO_ROOT))
        for p in sorted(TESTS.rglob("*.py"))
        if p.name != "test_layout.py" and _touches_sys_path(ast.parse(p.read_text()))
    ]
    assert bad == []


def test_the_scan_would_see_a_sys_path_edit():
    assert _touches_sys_path(ast.parse("import sys\nsys.path.insert(0, 'x')\n"))
    assert not _touches_sys_path(ast.parse("import os\nos.path.join('a')\n"))


def test_unit_test_folders_mirror_stream_packages():
    folders = sorted(d.name for d in (TESTS / "unit").iterdir() if d.is_dir() and d.name != "__pycache__")
    assert folders and [f for f in folders if not (REPO_ROOT / "stream" / f / "__init__.py").exists()] == []


def test_the_tests_package_is_this_repositorys():
    import tests

    assert tests.__file__ == str(TESTS / "__init__.py")


def test_test_helpers_are_imported_by_package_path():
    """``from workers import ...`` or ``from test_kafka_redis import ...`` only worked through
    pytest's rootdir sys.path insertion; helpers are imported as ``tests.<folder>.<module>``."""
    local = {p.stem for p in TESTS.rglob("*.py")} - {"__init__", "conftest"}
    bad = []
    for p in sorted(TESTS.rglob("*.py")):
        for n in ast.walk(ast.parse(p.read_text())):
            names = (
                [a.name for a in n.names]
                if isinstance(n, ast.Import)
                else [n.module or ""]
                if (isinstance(n, ast.ImportFrom) and not n.level)
                else []
            )
            bad += [(str(p.relative_to(REPO_ROOT)), m) for m in names if m.split(".")[0] in local]
    assert bad == []
