"""The one config system: dataclasses, named presets, dotted CLI overrides.

Every entry point calls :func:`parse_config` with its config dataclass and its presets::

    cfg = parse_config(TrainConfig, sys.argv[1:], presets={"debug": TrainConfig(...)})

``--preset NAME`` picks a starting point (default: the dataclass defaults), then
``--a.b=value`` or ``--a.b value`` overrides fields, parsed by the field's annotation.
Nested dataclasses are addressed with dots. Unknown keys and unparsable values raise
:class:`ConfigError` naming the offending key and value. ``--help`` lists every key with
its value under the chosen preset, and the preset names.

Bad input ends every entry point the same way: :func:`cli_main` wraps a ``main(argv)``
so that a bad key or value, a missing or unreadable file or folder, or an invalid file
(``ValueError``, ``FileNotFoundError``, ``PermissionError``, a YAML error, ...) writes one
line ``<prog>: error: <reason>`` to stderr and returns exit status 2
(:data:`EXIT_BAD_INPUT`), without a traceback (it is logged at DEBUG).
:class:`OneLineArgumentParser` does the same for argparse's usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from executor_core.atomic_io import write_text_atomic

logger = logging.getLogger(__name__)

# Exit status of an entry point given bad input (argparse's usage error uses it too).
EXIT_BAD_INPUT = 2
# What bad input raises: config values (ConfigError and every __post_init__ check are
# ValueErrors, as are JSON and text decoding errors), missing or unreadable paths, YAML.
BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    yaml.YAMLError,
)


class ConfigError(ValueError):
    """A preset name, key or value given on the command line is not valid."""


def _parse_value(text: str, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse_value(text, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"--{key}={text!r} matches none of {annotation!r}: {errors}")
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--{key} expects a boolean, got {text!r}")
    if annotation in (int, float, str):
        try:
            return annotation(text)
        except ValueError:
            raise ConfigError(f"--{key} expects {annotation.__name__}, got {text!r}") from None
    if annotation is Path:
        return Path(text)
    if origin in (tuple, list):
        try:
            items = json.loads(text) if text.strip().startswith("[") else text.split(",")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--{key} expects a list, got {text!r}: {exc}") from None
        item_type = args[0] if args else str
        parsed = [_parse_value(str(item), item_type, key) for item in items]
        return tuple(parsed) if origin is tuple else parsed
    if origin is typing.Literal:
        if text not in args:
            raise ConfigError(f"--{key} must be one of {args!r}, got {text!r}")
        return text
    raise ConfigError(f"--{key}: cannot parse {annotation!r} from the command line")


def _parse_path(cfg: Any, dotted: str, text: str) -> Any:
    """The value ``--dotted=text`` sets, parsed to its field's type (the config unchanged)."""
    head, _, rest = dotted.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if head not in fields:
        raise ConfigError(
            f"unknown config key {dotted!r} for {type(cfg).__name__}; known: {sorted(fields)}"
        )
    current = getattr(cfg, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"config key {head!r} is not a section, cannot set {dotted!r}")
        return _parse_path(current, rest, text)
    if dataclasses.is_dataclass(current):
        raise ConfigError(f"config key {dotted!r} is a section; set its fields with dots")
    return _parse_value(text, typing.get_type_hints(type(cfg))[head], dotted)


def _replace_all(cfg: Any, values: dict[str, Any]) -> Any:
    """``cfg`` with every dotted key of ``values`` set, each section rebuilt once, so its
    ``__post_init__`` checks the values together, not one at a time."""
    here: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        head, _, rest = dotted.partition(".")
        if rest:
            sections.setdefault(head, {})[rest] = value
        else:
            here[head] = value
    for head, inner in sections.items():
        here[head] = _replace_all(getattr(cfg, head), inner)
    return dataclasses.replace(cfg, **here) if here else cfg


def apply_overrides[T](cfg: T, overrides: list[str]) -> T:
    """Apply ``--a.b=value`` / ``--a.b value`` overrides to a config dataclass. Each value is
    parsed on its own (an error names it); the config is then validated once with all of
    them, so their order does not matter (a later repeat of a key wins)."""
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    i = 0
    while i < len(overrides):
        arg = overrides[i]
        if not arg.startswith("--"):
            raise ConfigError(f"expected --key=value, got {arg!r}")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(overrides):
                raise ConfigError(f"missing value for {arg!r}")
            value = overrides[i + 1]
            i += 1
        try:
            values[key] = _parse_path(cfg, key, value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--{key}={value!r}: {exc}") from exc
        given[key] = value
        i += 1
    try:
        return _replace_all(cfg, values)
    except (TypeError, ValueError) as exc:
        # __post_init__ validation errors already quote the value; keep them readable.
        named = " ".join(f"--{k}={v!r}" for k, v in given.items())
        raise ConfigError(f"{named}: {exc}") from exc


def help_text(cfg: Any, presets: dict[str, Any], prog: str) -> str:
    """Usage: the presets and every dotted key with its type and current value."""
    lines = [
        f"usage: {prog} [--preset NAME] [--key=value | --key value ...]",
        "",
        f"presets: {', '.join(sorted(presets)) or '(none)'}",
        f"keys ({type(cfg).__name__}; values as resolved for the preset given):",
    ]

    def walk(node: Any, prefix: str) -> None:
        hints = typing.get_type_hints(type(node))
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
                continue
            hint = hints[f.name]
            if typing.get_origin(hint) is typing.Literal:
                kind = " | ".join(map(str, typing.get_args(hint)))
            else:
                kind = getattr(hint, "__name__", None) or str(hint).replace("pathlib.", "")
            shown = str(value) if isinstance(value, Path) else repr(value)
            lines.append(f"  --{prefix}{f.name}  ({kind})  = {shown}")

    walk(cfg, "")
    return "\n".join(lines) + "\n"


def parse_config[T](cls: type[T], argv: list[str], presets: dict[str, T] | None = None) -> T:
    """Build a config from ``--preset NAME`` (optional) and dotted overrides.

    ``-h`` / ``--help`` writes :func:`help_text` to stdout and exits 0.
    """
    presets = presets or {}
    argv = list(argv)
    wants_help = any(a in ("-h", "--help") for a in argv)
    argv = [a for a in argv if a not in ("-h", "--help")]
    cfg: T = cls()
    for i, arg in enumerate(argv):
        name = None
        if arg == "--preset":
            if i + 1 >= len(argv):
                raise ConfigError("--preset needs a name")
            name = argv[i + 1]
            del argv[i : i + 2]
        elif arg.startswith("--preset="):
            name = arg.split("=", 1)[1]
            del argv[i]
        if name is not None:
            if name not in presets:
                raise ConfigError(f"unknown preset {name!r}; known: {sorted(presets)}")
            cfg = presets[name]
            break
    if wants_help:
        sys.stdout.write(help_text(cfg, presets, Path(sys.argv[0]).name))
        raise SystemExit(0)
    return apply_overrides(cfg, argv)


def require_positive(name: str, value: float) -> float:
    """``value`` if it is finite and > 0 (NaN and inf are refused), else a ValueError that
    names it: ``"<name> must be > 0 and finite, got <value>"``."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return value


def require_non_negative(name: str, value: float) -> float:
    """``value`` if it is finite and >= 0 (NaN and inf are refused), else a ValueError that
    names it."""
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be >= 0 and finite, got {value!r}")
    return value


def check_positive(cfg: Any, *names: str) -> None:
    """:func:`require_positive` on each named field of the config ``cfg``."""
    for name in names:
        require_positive(name, getattr(cfg, name))


def check_non_negative(cfg: Any, *names: str) -> None:
    """:func:`require_non_negative` on each named field of the config ``cfg``."""
    for name in names:
        require_non_negative(name, getattr(cfg, name))


def check_optimization(cfg: Any) -> None:
    """The fields every trainer of ours shares, checked one way: ``learning_rate`` > 0 and
    finite; ``weight_decay`` >= 0 and finite; ``warmup_steps``, ``shift_px`` >= 0;
    ``color_jitter`` in [0, 1). A ValueError names the bad value."""
    if not (cfg.learning_rate > 0 and math.isfinite(cfg.learning_rate)):
        raise ValueError(f"learning_rate must be > 0, got {cfg.learning_rate!r}")
    if not (cfg.weight_decay >= 0 and math.isfinite(cfg.weight_decay)):
        raise ValueError(f"weight_decay must be >= 0 and finite, got {cfg.weight_decay!r}")
    if cfg.warmup_steps < 0 or cfg.shift_px < 0:
        raise ValueError(
            f"warmup_steps, shift_px must be >= 0, got {cfg.warmup_steps!r}, {cfg.shift_px!r}"
        )
    if not 0.0 <= cfg.color_jitter < 1.0:
        raise ValueError(f"color_jitter must be in [0, 1), got {cfg.color_jitter!r}")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(cfg)


def config_from_dict[T](cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a (nested) config dataclass from :func:`config_to_dict` output."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown keys {unknown} for {cls.__name__}")
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            kwargs[name] = config_from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            kwargs[name] = tuple(value)
        elif hint is Path or (
            typing.get_origin(hint) in (typing.Union, types.UnionType)
            and Path in typing.get_args(hint)
            and isinstance(value, str)
        ):
            kwargs[name] = Path(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def save_config_json(cfg: Any, path: Path) -> None:
    """Write the resolved config as JSON, atomically."""
    write_text_atomic(path, json.dumps(config_to_dict(cfg), indent=2, sort_keys=True) + "\n")


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a multi-line message joined with " | ")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " | ".join(lines) or type(exc).__name__


def report_bad_input(prog: str, exc: BaseException) -> int:
    """Write ``<prog>: error: <reason>`` to stderr; returns :data:`EXIT_BAD_INPUT`."""
    logger.debug("%s: bad input", prog, exc_info=exc)
    sys.stderr.write(f"{prog}: error: {one_line(exc)}\n")
    sys.stderr.flush()
    return EXIT_BAD_INPUT


def cli_main[**P](
    prog: str, *also: type[BaseException]
) -> Callable[[Callable[P, int | None]], Callable[P, int | None]]:
    """Decorate an entry point's ``main``: bad input (:data:`BAD_INPUT_ERRORS` and the
    exception types in ``also``) returns :data:`EXIT_BAD_INPUT` after one line on stderr.

    Console scripts ``sys.exit(main())``, so the status reaches the shell; a module run
    with ``python -m`` must do the same in its ``__main__`` block.
    """
    caught = (*BAD_INPUT_ERRORS, *also)

    def wrap(main: Callable[P, int | None]) -> Callable[P, int | None]:
        @functools.wraps(main)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> int | None:
            try:
                return main(*args, **kwargs)
            except caught as exc:
                return report_bad_input(prog, exc)

        return wrapper

    return wrap


CLI_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_cli_logging(fmt: str = CLI_LOG_FORMAT) -> None:
    """INFO and above on stderr in ``fmt``, for an entry point's ``main``.

    Importing lerobot installs a root ``StreamHandler`` on stderr, which makes a plain
    ``logging.basicConfig`` do nothing (our INFO lines would be lost); replacing every root
    handler (``force=True``) would also remove handlers others put there (pytest's log
    capture, which then writes to a closed stream in later tests). So: the root logger goes
    to INFO, plain stream handlers get ``fmt``, and one is added only where there is none.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(logging.Formatter(fmt))


def require_local_dataset(root: str | Path) -> Path:
    """``Path(root)`` when it holds a local LeRobotDataset (``meta/info.json``), else a
    ``FileNotFoundError`` naming it. Call it before any lerobot loader: given a folder that
    is not there, lerobot would try to download the dataset from the Hugging Face Hub."""
    root = Path(root)
    if not (root / "meta" / "info.json").is_file():
        what = "missing meta/info.json" if root.is_dir() else "no such folder"
        raise FileNotFoundError(f"no local LeRobotDataset at {root} ({what})")
    return root


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error as one line ``<prog>: error: <reason> (see --help)``
    and exit status :data:`EXIT_BAD_INPUT` (stock argparse prints its usage block first)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_BAD_INPUT)


def parse_named_paths(text: str, flag: str) -> dict[str, Path]:
    """``name=path,name=path`` (a benchmark's list of models or datasets) -> {name: path}, in
    order; a ValueError naming ``flag`` and the bad entry."""
    out: dict[str, Path] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, path = entry.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag} entry {entry!r} is not name=path")
        if name in out:
            raise ValueError(f"{flag} names {name!r} twice")
        out[name] = Path(path)
    if not out:
        raise ValueError(f"{flag} {text!r} names nothing")
    return out
