import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from executor_core.config_cli import (
    ConfigError,
    check_optimization,
    config_from_dict,
    config_to_dict,
    configure_cli_logging,
    parse_config,
    parse_named_paths,
    save_config_json,
)


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


@dataclass(frozen=True)
class Train:
    steps: int = 10
    name: str = "run"
    use_ema: bool = True
    out: Path | None = None
    optim: Optim = field(default_factory=Optim)


PRESETS = {"debug": Train(steps=2, name="debug")}


def test_preset_then_overrides_both_forms():
    cfg = parse_config(
        Train,
        ["--preset", "debug", "--optim.lr=0.5", "--use_ema", "false", "--out=/tmp/x"],
        PRESETS,
    )
    assert cfg.steps == 2
    assert cfg.name == "debug"
    assert cfg.optim.lr == 0.5
    assert cfg.use_ema is False
    assert cfg.out == Path("/tmp/x")


def test_tuple_and_none_parsing():
    cfg = parse_config(Train, ["--optim.betas=0.5,0.6", "--out=none"])
    assert cfg.optim.betas == (0.5, 0.6)
    assert cfg.out is None


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--preset", "nope"], "'nope'"),
        (["--stepz=3"], "'stepz'"),
        (["--steps=three"], "'three'"),
        (["--use_ema=maybe"], "'maybe'"),
        (["--optim.lr=-1"], "-1"),
        (["--optim=3"], "section"),
    ],
)
def test_bad_input_names_the_value(argv, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_config(Train, argv, PRESETS)


def test_json_round_trip(tmp_path):
    cfg = parse_config(Train, ["--optim.lr=0.25", "--out=/data/run"])
    path = tmp_path / "sub" / "config.json"
    save_config_json(cfg, path)
    assert not list(path.parent.glob(".*.tmp"))
    import json

    loaded = config_from_dict(Train, json.loads(path.read_text()))
    assert loaded == cfg
    assert config_to_dict(loaded)["optim"]["lr"] == 0.25


def test_help_lists_presets_and_resolved_keys(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(Train, ["--preset=debug", "--help"], PRESETS)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "presets: debug" in out
    assert "--steps  (int)  = 2" in out  # the preset's value, not the dataclass default
    assert "--optim.lr  (float)  = 0.001" in out
    assert "--out  (Path | None)  = None" in out


def test_cli_logging_keeps_others_handlers_and_formats_the_plain_one() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    plain = logging.StreamHandler(stream)  # what importing lerobot installs, on stderr
    other = logging.NullHandler()  # e.g. pytest's capture: must stay, untouched
    root.handlers = [plain, other]
    root.setLevel(logging.WARNING)
    try:
        configure_cli_logging("%(levelname)s|%(message)s")
        logging.getLogger("executor_test").info("progress 3/4")
        assert root.handlers == [plain, other]
        assert stream.getvalue() == "INFO|progress 3/4\n"
        assert other.formatter is None
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)


def test_parse_named_paths_keeps_the_order_and_names_a_bad_entry() -> None:
    got = parse_named_paths("b=x/y, a=z,", "--models")
    assert list(got.items()) == [("b", Path("x/y")), ("a", Path("z"))]
    with pytest.raises(ValueError, match="--models entry 'oops' is not name=path"):
        parse_named_paths("a=z,oops", "--models")
    with pytest.raises(ValueError, match="--models names 'a' twice"):
        parse_named_paths("a=z,a=w", "--models")
    with pytest.raises(ValueError, match="--models ',' names nothing"):
        parse_named_paths(",", "--models")


@dataclass(frozen=True)
class Window:
    """Two fields valid only together: ``size`` must divide ``span``."""

    span: int = 20
    size: int = 4

    def __post_init__(self) -> None:
        if self.span % self.size:
            raise ValueError(f"span {self.span!r} is not a multiple of size {self.size!r}")


def test_overrides_are_validated_together_in_any_order():
    for argv in (["--size", "8", "--span", "16"], ["--span", "16", "--size", "8"]):
        assert parse_config(Window, argv) == Window(span=16, size=8)
    assert parse_config(Window, ["--size", "3", "--size", "5"]).size == 5  # the last wins
    with pytest.raises(ConfigError, match="--size='8' --span='12': span 12 is not a multiple"):
        parse_config(Window, ["--size", "8", "--span", "12"])


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("learning_rate", float("nan"), "learning_rate must be > 0"),
        ("weight_decay", float("nan"), "weight_decay must be >= 0 and finite"),
        ("weight_decay", float("inf"), "weight_decay must be >= 0 and finite"),
        ("weight_decay", -0.1, "weight_decay must be >= 0 and finite"),
        ("shift_px", -1, "shift_px must be >= 0"),
        ("color_jitter", 1.0, "color_jitter must be in [0, 1)"),
    ],
)
def test_check_optimization_names_the_bad_value(field: str, value: float, needle: str) -> None:
    good = {
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "shift_px": 0,
        "color_jitter": 0.0,
    }
    check_optimization(SimpleNamespace(**good))  # the good values pass
    with pytest.raises(ValueError, match=re.escape(needle)):
        check_optimization(SimpleNamespace(**{**good, field: value}))
