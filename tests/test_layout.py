"""The package layout holds: `utils/` is only sub-packages, each imports only from its own layer or below, and
`nets/` never imports from training, evaluation, inference or export."""

import ast
from pathlib import Path

from tests.conftest import ROOT

# Lowest first: a package may import from its own layer and the layers before it.
LAYERS = (("io",), ("config", "ops"), ("data",), ("inference",), ("evaluation",), ("export",), ("training",),
          ("cli",))
LAYER_OF = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
NETS_MAY_IMPORT = {"ops", "config", "io"}


def imported_utils_packages(path: Path) -> set[str]:
    """The `utils.<package>` names a module imports (anywhere in it, top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "utils" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_utils_holds_only_packages():
    loose = [p.name for p in (ROOT / "utils").glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"modules at utils/'s top level: {loose}"
    assert set(LAYER_OF) == {p.name for p in (ROOT / "utils").iterdir() if (p / "__init__.py").is_file()}


def test_no_import_runs_up_the_layers():
    upward = []
    for package, rank in LAYER_OF.items():
        for path in (ROOT / "utils" / package).glob("*.py"):
            upward += [f"{path.relative_to(ROOT)} imports utils.{other}" for other in imported_utils_packages(path)
                       if LAYER_OF[other] > rank]
    for path in (ROOT / "nets").glob("*.py"):
        upward += [f"{path.relative_to(ROOT)} imports utils.{other}" for other in imported_utils_packages(path)
                   if other not in NETS_MAY_IMPORT]
    assert not upward, "\n".join(upward)
