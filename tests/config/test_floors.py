"""The floors of DESIGN.md: an app imports only from the floors below it. Lower floors reach
higher ones only through registries they own (LAUNCH_CHECKS, RULES_TEXT_PARTS...)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# app → the first-party apps it must never import
FORBIDDEN = {
    "campaigns": {"referrals", "mechanics", "analytics", "reports", "simulator"},
    "referrals": {"mechanics", "analytics", "reports", "simulator"},
    "mechanics": {"analytics", "reports", "simulator"},
    "analytics": {"reports", "simulator"},
}


def imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_an_app_imports_nothing_from_the_floors_above_it(app):
    breaches = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / app).rglob("*.py"))
        for name in imported_apps(path) & FORBIDDEN[app]
    ]
    assert not breaches, "\n".join(breaches)


def test_one_mechanic_does_not_import_another():
    mechanics = [p.name for p in (ROOT / "mechanics").iterdir() if (p / "apps.py").exists()]
    breaches = []
    for name in mechanics:
        for path in sorted((ROOT / "mechanics" / name).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                module = node.module if isinstance(node, ast.ImportFrom) and node.level == 0 else None
                if module and module.startswith("mechanics.") and module.split(".")[1] not in (name,):
                    breaches.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not breaches, "\n".join(breaches)
