"""The flag reference of every script, generated from their argparse parsers (`docs/flags.md`; a test fails when
the file and the parsers differ).

    python -m utils.cli.reference            # rewrite docs/flags.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from utils.cli.parsers import PARSERS
from utils.io.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "flags.md"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if action.default is None or action.default == argparse.SUPPRESS or isinstance(
            action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return ""
    value = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else str(action.default)
    return f"`{value.replace(str(ROOT) + '/', '')}`"  # project files by their path in the checkout


def _flags(action: argparse.Action) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest}`"
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        names += " {" + ", ".join(map(str, action.choices)) + "}"
    return names


def parser_reference(parser: argparse.ArgumentParser, title: str, level: int = 2) -> list[str]:
    """Markdown for one parser: a table per argument group, then each subcommand's own section."""
    lines = [f"{'#' * level} {title}", "", _cell(parser.description or ""), ""]
    subcommands = []
    for group in parser._action_groups:
        rows = []
        for action in group._group_actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                subcommands += list(action.choices.items())
                continue
            meaning = _cell((action.help or "").replace("%%", "%"))
            rows.append(f"| {_flags(action)} | {_default(action)} | {meaning} |")
        if rows:
            lines += [f"**{group.title}**", "", "| flag | default | meaning |", "|---|---|---|", *rows, ""]
    for name, subparser in subcommands:
        lines += parser_reference(subparser, f"{title} {name}", level + 1)
    return lines


def reference_text() -> str:
    lines = ["# Command-line flags", "",
             "Generated from the scripts' parsers (`utils/cli/parsers.py`) by `python -m utils.cli.reference`; the "
             "settings' defaults and help come from the typed configs in `utils/config/` and the request "
             "dataclasses. A test fails when this file and the parsers differ.", ""]
    for script, make_parser in PARSERS.items():
        lines += parser_reference(make_parser(), f"{script}.py")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    atomic_write_text(REFERENCE, reference_text())
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
