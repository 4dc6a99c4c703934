"""How a setting is declared (`setting`: default, help, flag, choices, bounds, per-use defaults) and how a config's
fields are checked against their declared types (`check_fields`), whichever door the values came through: flags,
a JSON or YAML file, or Python.

Values are taken as declared, or converted where the meaning is unambiguous: a number written as a string
(`"1e-3"`, YAML's habit), a whole float for an integer (`2.0`), a list for a tuple. Booleans are only booleans,
lists only lists, numbers are finite. An error names the key path (`model.class_names`) and what was expected.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from dataclasses import MISSING, field

MODEL_OWN = "model"  # a per-use default meaning "the detector's own setting"


class ConfigError(ValueError):
    """A setting with a wrong type or value; `key` is its path in the config (`model.input_size`)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem

    def under(self, parent: str) -> ConfigError:
        """The same error with its key inside `parent` (`input_size` → `model.input_size`)."""
        return ConfigError(f"{parent}.{self.key}", self.problem)


def setting(default=None, help: str = "", *, flag: str | None = None, choices: tuple | None = None,
            metavar: str | tuple | None = None, cli: bool = True, factory=None, minimum: float | None = None,
            maximum: float | None = None, above: float | None = None, uses: dict | None = None,
            aliases: tuple[str, ...] = (), required: bool = False):
    """A dataclass field with what its flag and its checks need.

    Args:
        help: the flag's help and the reference's text.
        flag: the flag's name (default: the field's name with dashes); `aliases`: other names for it.
        cli: False for a field set from other inputs (such as the class file), with no flag.
        required: the flag must be given (the field's None default then fails `check_fields`).
        minimum, maximum: inclusive bounds; above: exclusive lower bound.
        uses: per-use defaults (`{"predict": MODEL_OWN, "evaluate": 0.001}`): the field has a flag only in those
            uses, with that default (`MODEL_OWN`: the detector's own value).
    """
    metadata = {"help": help, "flag": flag, "choices": choices, "metavar": metavar, "cli": cli, "minimum": minimum,
                "maximum": maximum, "above": above, "uses": uses, "aliases": tuple(aliases), "required": required}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def field_default(config_class: type, name: str):
    """The declared default of one setting (for scripts whose flags share it)."""
    declared = config_class.__dataclass_fields__[name]
    return declared.default_factory() if declared.default is MISSING else declared.default


def optional_inner(hint) -> tuple[object, bool]:
    """(the type inside `X | None`, True) or (hint, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(hint)):
            return args[0], True
    return hint, False


def _describe(value: object) -> str:
    kind = {bool: "a boolean", str: "a string", list: "a list", tuple: "a list", dict: "a mapping",
            type(None): "null"}.get(type(value), f"a {type(value).__name__}")
    return f"{value!r} ({kind})"


def coerce(value: object, hint: object, key: str) -> object:
    """`value` as the declared type `hint`, or a `ConfigError` naming `key`."""
    inner, optional = optional_inner(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(key, "a value is required (got null)")
    if dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            return value
        raise ConfigError(key, f"expected a {inner.__name__} mapping, got {_describe(value)}")
    if inner is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected true or false, got {_describe(value)}")
    if inner is int:
        return _integer(value, key)
    if inner is float:
        return _number(value, key)
    if inner is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"expected a string, got {_describe(value)}")
    if typing.get_origin(inner) is tuple:
        return _sequence(value, typing.get_args(inner), key)
    raise TypeError(f"{key}: no check for the declared type {hint!r}")  # a declaration this module cannot read


def _integer(value: object, key: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a whole number, got {_describe(value)}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(key, f"expected a whole number, got {_describe(value)}")


def _number(value: object, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a number, got {_describe(value)}")
    number = None
    if isinstance(value, numbers.Real):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
    if number is None:
        raise ConfigError(key, f"expected a number, got {_describe(value)}")
    if not math.isfinite(number):
        raise ConfigError(key, f"expected a finite number, got {value!r}")
    return number


def _sequence(value: object, args: tuple, key: str) -> tuple:
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # a NumPy array
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"expected a list, got {_describe(value)}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(item, args[0], f"{key}[{i}]") for i, item in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(key, f"expected a list of {len(args)} values, got {len(value)}: {list(value)!r}")
    return tuple(coerce(item, hint, f"{key}[{i}]") for i, (item, hint) in enumerate(zip(value, args, strict=True)))


def check_fields(config: object) -> None:
    """Check (and convert, see the module docstring) every field of a frozen dataclass instance against its
    declared type, choices and bounds; call it first in `__post_init__`."""
    hints = typing.get_type_hints(type(config))
    for declared in dataclasses.fields(config):
        name = declared.name
        value = coerce(getattr(config, name), hints[name], name)
        object.__setattr__(config, name, value)
        meta = declared.metadata
        if meta.get("choices") and value is not None:
            items = value if isinstance(value, tuple) else (value,)
            outside = [item for item in items if item not in meta["choices"]]
            if outside:
                raise ConfigError(name, f"expected one of {', '.join(map(str, meta['choices']))}, got {outside[0]!r}")
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        if meta.get("minimum") is not None and value < meta["minimum"]:
            raise ConfigError(name, f"must be at least {meta['minimum']:g}, got {value!r}")
        if meta.get("maximum") is not None and value > meta["maximum"]:
            raise ConfigError(name, f"must be at most {meta['maximum']:g}, got {value!r}")
        if meta.get("above") is not None and value <= meta["above"]:
            raise ConfigError(name, f"must be above {meta['above']:g}, got {value!r}")


def reject_unknown(config_class: type, values: object, where: str = "") -> None:
    """An error naming the keys of `values` that are no field of `config_class` (a typo never goes unnoticed)."""
    if not isinstance(values, dict):
        raise ConfigError(where or "config", f"expected a mapping of settings, got {_describe(values)}")
    prefix = f"{where}." if where else ""
    unknown = set(values) - {f.name for f in dataclasses.fields(config_class)}
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(prefix + key for key in unknown)}; a config written by an "
                         f"earlier version: remove these keys to keep its other settings, or start a new run")


def build_checked(config_class: type, values: dict, where: str = ""):
    """`config_class(**values)` from a file's mapping: unknown keys and bad values are errors that name their key
    path under `where` (`"model"`)."""
    reject_unknown(config_class, values, where)
    try:
        return config_class(**values)
    except ConfigError as error:
        raise error.under(where) if where else error from None
