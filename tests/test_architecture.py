"""The shape of the code: no import circle, modules a reader can hold, the contracts kept."""

from __future__ import annotations

from pathlib import Path

import grimp

APP = Path(__file__).resolve().parents[1] / "app"


def test_no_circle_in_the_import_graph() -> None:
    graph = grimp.build_graph("app")
    circles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if imported.startswith("app") and graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert circles == []


def test_no_module_over_300_non_blank_lines() -> None:
    sizes = {
        str(path.relative_to(APP)): sum(1 for line in path.read_text().splitlines() if line.strip())
        for path in APP.rglob("*.py")
    }
    assert {name: size for name, size in sizes.items() if size > 300} == {}
