"""docs/configuration.md lists every setting, with its current type, default and a meaning."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "configuration_table", ROOT / "scripts" / "configuration_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_is_what_the_settings_class_generates() -> None:
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert generator().updated(current) == current, (
        "docs/configuration.md is out of date: run scripts/configuration_table.py"
    )


def test_every_setting_has_a_meaning() -> None:
    meanings = generator().parse_meanings((ROOT / "docs" / "configuration.md").read_text())
    expected = {f"FINREC_{name.upper()}" for name in Settings.model_fields}
    assert set(meanings) == expected
    assert [name for name, meaning in meanings.items() if not meaning] == []
