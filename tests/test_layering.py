"""The import rules of docs/architecture.md: plugins import only the core's public names,
and never each other; the core imports no plugin and no server."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import balrog_engine

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_FILES = sorted((ROOT / "plugins").rglob("*.py"))
CORE_FILES = sorted((ROOT / "balrog_engine").rglob("*.py"))


def within(module: str, *packages: str) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(level, module, names)`` for every import statement in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_no_other_plugin(path):
    """A plugin may be split into modules of its own (``sql.py``, ``sql_schema.py``, …: one name
    prefix, imported relatively); it imports nothing else from plugins or servers."""
    plugin = path.stem.split("_")[0]
    for level, module, names in imports(path):
        if level:
            own = [module] if module else names
            assert level == 1 and all(name.split("_")[0] == plugin for name in own), \
                f"{path.name}: relative import of {own} (not a module of the {plugin!r} plugin)"
            continue
        assert not within(module, "balrog_plugins", "balrog_app", "plugins", "app"), f"{path.name}: {module}"


@pytest.mark.parametrize("path", [p for p in PLUGIN_FILES if p.parent.name == "blob_types"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_blob_types_import_only_public_core_names(path):
    for _, module, names in imports(path):
        if module == "balrog_engine":
            assert set(names) <= set(balrog_engine.__all__), f"{path.name}: {set(names) - set(balrog_engine.__all__)}"
        else:
            assert not within(module, "balrog_engine"), f"{path.name}: imports {module}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_plugin_or_server(path):
    for _, module, _ in imports(path):
        assert not within(module, "balrog_plugins", "balrog_app"), f"{path.name}: {module}"
