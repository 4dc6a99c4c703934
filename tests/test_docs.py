"""The README and docs/ stay true: every documented command parses with the script's own parser (a renamed or
removed flag fails here), every Python example's imports resolve (a moved module fails), and every link and file
path points at something that exists. `make docs-check` runs the commands themselves (tests/test_docs_run.py)."""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import re

import pytest

from tests.docs_commands import DOCUMENTS, ROOT, all_blocks, all_commands
from utils.cli.parsers import PARSERS

OTHER_PROGRAMS = {"tensorboard", "shuf", "head", "tail", "cd", "pip", "git", "ls", "cat"}


def test_the_docs_have_commands_to_check():
    assert len(all_commands()) > 40 and len(all_blocks("python")) > 4


def test_every_documented_command_parses_with_its_script():
    problems = []
    makefile = (ROOT / "Makefile").read_text()
    train_flags = PARSERS["train"]()._option_string_actions  # what a benchmark's `--extra` passes to train.py
    for command in all_commands():
        script = command.python_script
        if command.words[0] == "make":
            if not re.search(rf"^{re.escape(command.words[1])}:", makefile, re.MULTILINE):
                problems.append(f"{command.where}: no make target {command.words[1]!r}")
        elif script is None:
            program = command.words[0].rsplit("/", 1)[-1]
            if not (program in OTHER_PROGRAMS or program.startswith("python")):
                problems.append(f"{command.where}: unknown program in {command.text!r}")
        elif script.startswith("benchmarks/"):
            path = ROOT / script
            source = path.read_text() if path.is_file() else ""
            arguments = command.script_arguments  # after `--extra`: train.py's flags, passed through
            extra = arguments[arguments.index("--extra") + 1:] if "--extra" in arguments else []
            flags = [word.split("=")[0] for word in arguments[:len(arguments) - len(extra)] if word.startswith("--")]
            missing = [flag for flag in flags if f'"{flag}"' not in source]
            missing += [word for word in extra if word.startswith("--") and word.split("=")[0] not in train_flags]
            if not path.is_file() or missing:
                problems.append(f"{command.where}: {script} lacks {missing or 'the file'}")
        elif (name := script.removesuffix(".py")) in PARSERS:
            errors = io.StringIO()
            try:
                with contextlib.redirect_stderr(errors):
                    PARSERS[name]().parse_args(command.script_arguments)
            except SystemExit:
                problems.append(f"{command.where}: {command.text!r}: {errors.getvalue().strip().splitlines()[-1]}")
        else:
            problems.append(f"{command.where}: no such script {script!r}")
    assert not problems, "\n".join(problems)


def _project_imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("nets", "utils"):
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.split(".")[0] in ("nets", "utils")]
    return found


def test_every_python_example_compiles_and_its_imports_resolve():
    problems = []
    for block in all_blocks("python"):
        try:
            tree = ast.parse(block.text)
        except SyntaxError as error:
            problems.append(f"{block.where}: {error}")
            continue
        for module, names in _project_imports(tree):
            try:
                imported = importlib.import_module(module)
            except ImportError as error:
                problems.append(f"{block.where}: {error}")
                continue
            problems += [f"{block.where}: {module} has no {name}" for name in names if not hasattr(imported, name)]
    assert not problems, "\n".join(problems)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(document) -> set[str]:
    return {_slug(line.lstrip("#")) for line in document.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_link_and_file_path_exists(document):
    text = document.read_text()
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            problems.append(f"link to {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            problems.append(f"link to {target}: no such heading")
    for path in re.findall(r"`((?:nets|utils|benchmarks|tests|model_data|docs)/[\w/.\-]+\.\w+)`", text):
        if not (ROOT / path).exists():
            problems.append(f"`{path}`: no such file")
    assert not problems, f"{document.name}:\n" + "\n".join(problems)
