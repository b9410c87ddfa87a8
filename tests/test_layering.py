"""Lower layers never import higher ones (docs/architecture.md): every import in every module is checked
against the layer table, by reading the source (imports inside functions count too)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "swarmplan"
LAYER = {
    "errors": 0,
    "scenario": 0,
    "optim": 0,
    "perf": 1,
    "placement": 2,
    "routing": 2,
    "sim": 3,
    "methods": 4,
    "experiments": 5,
    "runtime": 5,
    "split": 5,
    "cli": 6,
}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "swarmplan" else None


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


MODULES = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.name not in ("__init__.py",))


def test_every_package_has_a_layer():
    packages = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in MODULES}
    assert packages - {"__init__", "__main__"} <= set(LAYER), packages - set(LAYER)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_from_a_higher_layer(path):
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    if own not in LAYER:
        return
    for module in imports_of(path):
        other = package_of(module)
        if other is not None and other in LAYER:
            assert LAYER[other] <= LAYER[own], f"{path.relative_to(SRC)} ({own}) imports {module} ({other})"


def test_the_check_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from swarmplan.cli.main import app\n")
    assert "swarmplan.cli.main" in imports_of(bad) and LAYER["cli"] > LAYER["perf"]
