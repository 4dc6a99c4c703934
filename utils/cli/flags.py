"""Command-line flags derived from the typed configs: each dataclass field declared with `config.run_config.setting`
becomes one flag whose type, default, choices and help come from the field, so the CLI cannot drift from a config
built in code."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _value_type(hint) -> type:
    """The value type of a field's annotation (`X | None` → X)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner
    return hint


def add_config_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, config_class: type) -> None:
    """Add a flag for every CLI field of `config_class` (dest: the field's name)."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if not field.metadata.get("cli", False):
            continue
        kind = _value_type(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else None
        options: dict = {"dest": field.name, "default": default, "help": field.metadata.get("help", "")}
        if field.metadata.get("metavar"):
            options["metavar"] = field.metadata["metavar"]
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            options.update(type=typing.get_args(kind)[0], nargs=len(typing.get_args(kind)))
        else:
            options["type"] = kind
            if field.metadata.get("choices"):
                options["choices"] = field.metadata["choices"]
        parser.add_argument(flag_of(field), **options)


def given_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> dict:
    """The flags present on the command line (dest → parsed value), without any defaults."""
    absent = object()  # argparse fills in a default only where the namespace has no value yet
    namespace = argparse.Namespace(**{dest: absent for dest in vars(parser.parse_args(argv))})
    return {dest: value for dest, value in vars(parser.parse_args(argv, namespace)).items() if value is not absent}
