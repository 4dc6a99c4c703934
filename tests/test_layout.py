"""The package layout holds: `utils/` is only sub-packages, each imports only from its own layer or below; `nets/`
sits above `utils.data` and below `utils.inference` (it imports no later layer, and no earlier layer imports it);
the library never imports the scripts."""

import ast
from pathlib import Path

from tests.conftest import ROOT

# Lowest first: a package may import from its own layer and the layers before it. `nets` is the model package.
LAYERS = (("io",), ("config", "ops"), ("data",), ("nets",), ("inference",), ("evaluation",), ("export",),
          ("training",), ("cli",))
LAYER_OF = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
SCRIPTS = {path.stem for path in ROOT.glob("*.py")}


def imported_packages(path: Path) -> set[str]:
    """The project packages a module imports, anywhere in it (top level or inside functions): `utils.<package>`
    (also as `from utils import <package>`), `nets`, and the top-level scripts."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + ([f"utils.{alias.name}" for alias in node.names] if node.module == "utils"
                                     else [])
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "utils" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] == "nets" or parts[0] in SCRIPTS:
                found.add(parts[0])
    return found


def library_modules() -> dict[str, list[Path]]:
    modules = {package: list((ROOT / "utils" / package).glob("*.py")) for package in LAYER_OF if package != "nets"}
    return {**modules, "nets": list((ROOT / "nets").glob("*.py"))}


def test_utils_holds_only_packages():
    loose = [p.name for p in (ROOT / "utils").glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"modules at utils/'s top level: {loose}"
    assert set(LAYER_OF) - {"nets"} == {p.name for p in (ROOT / "utils").iterdir() if (p / "__init__.py").is_file()}


def test_no_import_runs_up_the_layers_and_the_library_imports_no_script():
    upward = []
    for package, paths in library_modules().items():
        for path in paths:
            for other in imported_packages(path):
                if other in SCRIPTS:
                    upward.append(f"{path.relative_to(ROOT)} imports the script {other}.py")
                elif other != package and LAYER_OF[other] > LAYER_OF[package]:
                    upward.append(f"{path.relative_to(ROOT)} imports {other} (a later layer)")
    assert not upward, "\n".join(upward)


def test_the_check_sees_each_form_of_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from utils import training\nimport nets.yolo\ndef f():\n    import predict\n"
                      "    from utils.cli.flags import given_flags\n")
    assert imported_packages(module) == {"training", "nets", "predict", "cli"}
