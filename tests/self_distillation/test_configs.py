"""Every method CLI parses its presets and dotted overrides through the one config system,
and rejects bad values naming them."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor_core.config_cli import ConfigError, parse_config
from self_distillation import demo_generation, distill, evaluate, grpo_trainer, propose, report

CLIS = [
    (propose.ProposeConfig, propose.PRESETS),
    (demo_generation.DemoGenConfig, demo_generation.PRESETS),
    (distill.DistillConfig, distill.PRESETS),
    (grpo_trainer.GRPOConfig, grpo_trainer.PRESETS),
    (evaluate.EvalConfig, evaluate.PRESETS),
    (report.ReportConfig, report.PRESETS),
]


@pytest.mark.parametrize(("cls", "presets"), CLIS)
def test_every_cli_has_debug_and_sim_presets(cls: type, presets: dict) -> None:
    assert {"debug", "sim"} <= set(presets)
    assert parse_config(cls, ["--preset", "debug"], presets) == presets["debug"]


def test_nested_overrides() -> None:
    cfg = parse_config(
        grpo_trainer.GRPOConfig,
        [
            "--preset",
            "sim",
            "--judge.kind=vlm",
            "--judge.vlm_backend=http",
            "--judge.http.base_url=http://gpu-box:8000/v1",
            "--group_size",
            "16",
        ],
        grpo_trainer.PRESETS,
    )
    assert cfg.judge.kind == "vlm"
    assert cfg.judge.http.base_url == "http://gpu-box:8000/v1"
    assert cfg.group_size == 16
    assert cfg.init_pipeline == Path("outputs/method_sim/executor_distilled/pipeline")
    ev = parse_config(
        evaluate.EvalConfig,
        [
            "--preset=debug",
            "--closed_loop.num_episodes=3",
            "--conditions=executor_rl,demonstrator_prompt",
        ],
        evaluate.PRESETS,
    )
    assert ev.closed_loop.num_episodes == 3
    assert ev.conditions == ("executor_rl", "demonstrator_prompt")


@pytest.mark.parametrize(
    ("cls", "argv", "bad"),
    [
        (propose.ProposeConfig, ["--backend=gpt"], "gpt"),
        (grpo_trainer.GRPOConfig, ["--train_timestep_fraction=1.5"], "1.5"),
        (evaluate.EvalConfig, ["--conditions=executor_x"], "executor_x"),
        (demo_generation.DemoGenConfig, ["--text=caption"], "caption"),
        (evaluate.EvalConfig, ["--closed_loop.max_replans=-1"], "-1"),
    ],
)
def test_bad_values_are_named(cls: type, argv: list[str], bad: str) -> None:
    with pytest.raises(ConfigError, match=bad):
        parse_config(cls, argv, {})
