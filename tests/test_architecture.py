"""Layer rules: models/ and editors/ never import Qt; app/ reaches torch only through them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "pytestqt")
LAZY_ONLY = ("dlib", "cv2")


def top_level_imports(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """(module, line, at_module_level) for every import in the file."""
    found = []
    module_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in module_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node.lineno, id(node) in module_level))
    return found


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_models_and_editors_never_import_qt_or_the_app() -> None:
    problems = []
    for package in ("models", "editors"):
        for path in python_files(package):
            for module, line, at_top in top_level_imports(ast.parse(path.read_text())):
                root = module.split(".")[0]
                if root in QT_MODULES or root in ("app", "main"):
                    problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
                if root in LAZY_ONLY and at_top:
                    problems.append(
                        f"{path.relative_to(ROOT)}:{line} imports {module} at module level"
                    )
                if package == "models" and root in ("editors", "sklearn", "dlib", "cv2"):
                    problems.append(f"{path.relative_to(ROOT)}:{line} (models/) imports {module}")
    assert not problems, "\n".join(problems)


def test_app_never_imports_torch_itself() -> None:
    """No ``import torch`` in app/ outside ``TYPE_CHECKING``: tensors are models/ and editors/
    business. (The app does load torch, transitively through them, when it opens a model.)"""
    problems = []
    for path in python_files("app"):
        tree = ast.parse(path.read_text())
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                guarded |= {id(child) for child in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in guarded:
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if any(name.split(".")[0] == "torch" for name in names):
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not problems, "torch imported in app/: " + ", ".join(problems)


def test_pure_layers_import_with_qt_blocked() -> None:
    probe = (
        "import sys\n"
        "for name in ('PySide6', 'PySide6.QtCore', 'PySide6.QtWidgets', 'PySide6.QtGui'):\n"
        "    sys.modules[name] = None\n"
        "import pkgutil, importlib, models, editors\n"
        "for package in (models, editors):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
