"""Command-line flags derived from the typed configs: each dataclass field declared with `config.settings.setting`
becomes one flag whose type, default, choices, aliases and help come from the field, so the CLI cannot drift from a
config built in code. A field with per-use defaults (`DetectConfig`) gets a flag only in those uses, with that use's
default."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from utils.config.settings import MODEL_OWN, optional_inner


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def cli_fields(config_class: type, use: str | None = None) -> list[dataclasses.Field]:
    """The fields of `config_class` that have a flag (in `use`, for fields with per-use defaults)."""
    chosen = []
    for field in dataclasses.fields(config_class):
        uses = field.metadata.get("uses")
        if field.metadata.get("cli", False) and (use is None or uses is None or use in uses):
            chosen.append(field)
    return chosen


def _default(field: dataclasses.Field, use: str | None) -> tuple[object, str]:
    """The flag's default and a note for its help (for a default that is the model's own)."""
    uses = field.metadata.get("uses")
    if use is not None and uses is not None:
        default = uses[use]
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        default = field.default
    if default == MODEL_OWN:
        return None, " (default: the model's own)"
    return default, ""


def add_config_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, config_class: type,
                     use: str | None = None) -> None:
    """Add a flag for every CLI field of `config_class` (dest: the field's name)."""
    hints = typing.get_type_hints(config_class)
    for field in cli_fields(config_class, use):
        kind, _ = optional_inner(hints[field.name])
        default, note = _default(field, use)
        options: dict = {"dest": field.name, "help": field.metadata.get("help", "") + note}
        if field.metadata.get("required"):
            options["required"] = True
        else:
            options["default"] = default
        if field.metadata.get("metavar"):
            options["metavar"] = field.metadata["metavar"]
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            args = typing.get_args(kind)
            variable = len(args) == 2 and args[1] is Ellipsis
            options.update(type=args[0], nargs="+" if variable else len(args))
        else:
            options["type"] = kind
        if field.metadata.get("choices") and kind is not bool:
            options["choices"] = field.metadata["choices"]
        parser.add_argument(flag_of(field), *field.metadata.get("aliases", ()), **options)


def config_values(args: argparse.Namespace, config_class: type, use: str | None = None) -> dict:
    """The parsed values of `config_class`'s flags, by field name (None: not given, for fields whose default is
    the model's own)."""
    return {field.name: getattr(args, field.name) for field in cli_fields(config_class, use)
            if hasattr(args, field.name)}


def given_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> dict:
    """The flags present on the command line (dest → parsed value), without any defaults."""
    absent = object()  # argparse fills in a default only where the namespace has no value yet
    namespace = argparse.Namespace(**{dest: absent for dest in vars(parser.parse_args(argv))})
    return {dest: value for dest, value in vars(parser.parse_args(argv, namespace)).items() if value is not absent}
