from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from executor_core.train_state import latest_checkpoint
from self_distillation import grpo_trainer
from self_distillation.grpo_trainer import (
    PRESETS,
    GRPOConfig,
    group_success_shares,
    over_budget,
    penalised_rewards,
    pick_items,
    sample_groups,
    train_grpo,
)
from self_distillation.judges.base import JudgeVerdict
from self_distillation.task_items import items_of_families, load_items
from self_distillation.video_models import load_video_pipeline


class BrightnessJudgeDouble:
    """Test double of a video judge: rewards a bright last frame. Unlike the programmatic
    judge on a random tiny model (always 0), it gives GRPO a signal it can climb."""

    def judge(self, frames: np.ndarray, episode: dict) -> JudgeVerdict:
        assert frames.dtype == np.uint8
        assert frames.ndim == 4
        assert episode["prompt"]
        score = float(frames[-1].mean() / 255.0)
        return JudgeVerdict(score > 0.6, score, "brightness")


def _cfg(items_dir: Path, out: Path, **kw: object) -> GRPOConfig:
    # init_pipeline=None: a fresh random debug model, whatever outputs/ holds
    return replace(PRESETS["debug"], items=items_dir, output_dir=out, init_pipeline=None, **kw)


def test_pick_items_is_a_function_of_step() -> None:
    assert pick_items(5, 3, 2, seed=0) == pick_items(5, 3, 2, seed=0)
    first_epoch = pick_items(4, 0, 2, 0) + pick_items(4, 1, 2, 0)
    assert sorted(first_epoch) == [0, 1, 2, 3]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="eta must be > 0"):
        GRPOConfig(eta=0.0)
    with pytest.raises(ValueError, match="policy_weight 0 and anchor_beta 0 train nothing"):
        GRPOConfig(policy_weight=0.0)
    with pytest.raises(ValueError, match=r"max_minutes >= 0; got 1.0, -1.0"):
        GRPOConfig(max_minutes=-1.0)
    with pytest.raises(ValueError, match=r"unknown task families \['stacking'\]"):
        GRPOConfig(families=("push", "stacking"))


def test_families_keep_only_their_items(synthetic_items: Path) -> None:
    items = load_items(synthetic_items)  # four pick_place items
    assert items_of_families(items, ()) == items
    assert items_of_families(items, ("pick_place", "push")) == items
    with pytest.raises(ValueError, match=r"no item of the families \('stack',\) among 4"):
        items_of_families(items, ("stack",))
    with pytest.raises(ValueError, match=r"unknown task families \['Stack'\]"):
        items_of_families(items, ("Stack",))


def test_over_budget_stops_before_the_step_that_would_overrun() -> None:
    assert not over_budget(0.0, 1e9, 5)  # no budget
    assert not over_budget(1.0, 20.0, 1)  # 2 steps at 20 s fit in 60 s
    assert over_budget(1.0, 40.0, 1)  # a second 40 s step would end at 80 s
    assert not over_budget(1.0, 45.0, 3)  # 4 x 15 s = 60 s: exactly fits


def test_wall_clock_budget_saves_and_exports_the_last_step(
    synthetic_items: Path, tmp_path: Path
) -> None:
    cfg = _cfg(synthetic_items, tmp_path / "run", num_steps=50, save_every=100, max_minutes=1e-6)
    train_grpo(cfg, judge=BrightnessJudgeDouble())
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1
    assert latest_checkpoint(tmp_path / "run").name == "step_000001"
    assert (tmp_path / "run" / "pipeline" / "model_index.json").is_file()


def test_shared_group_noise_starts_a_group_from_one_noise(synthetic_items: Path) -> None:
    torch.set_num_threads(1)
    items = load_items(synthetic_items, limit=2)
    pipe = load_video_pipeline(None, "debug", "cpu", seed=0)
    cfg = replace(PRESETS["debug"], items=synthetic_items, group_size=3)
    shared = sample_groups(pipe, items, replace(cfg, shared_group_noise=True), step=0)
    x0 = shared.latents[0]
    assert torch.equal(x0[0], x0[1])
    assert torch.equal(x0[0], x0[2])
    assert not torch.equal(x0[0], x0[3])
    assert not np.array_equal(shared.frames[0], shared.frames[1])  # the SDE noise differs
    own = sample_groups(pipe, items, replace(cfg, shared_group_noise=False), step=0)
    assert not torch.equal(own.latents[0][0], own.latents[0][1])


def test_anchor_alone_pulls_the_policy_to_the_anchor(synthetic_items: Path, tmp_path: Path) -> None:
    """policy_weight 0: the rewards are only logged; the update is beta_d x the velocity
    gap to the frozen anchor (another model) on the policy's own SDE paths, which shrinks."""
    anchor_dir = tmp_path / "anchor"
    load_video_pipeline(None, "debug", "cpu", seed=123).save_pretrained(anchor_dir)
    cfg = _cfg(
        synthetic_items,
        tmp_path / "run",
        num_steps=6,
        kl_beta=0.0,
        learning_rate=3e-3,
        policy_weight=0.0,
        anchor_beta=1.0,
        anchor_pipeline=anchor_dir,
        save_every=100,
    )
    train_grpo(cfg, judge=BrightnessJudgeDouble())
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    gaps = [r["anchor"] for r in rows]
    assert all(g > 0 for g in gaps)
    assert np.mean(gaps[-2:]) < 0.8 * np.mean(gaps[:2]), gaps


def test_grpo_climbs_a_reward(synthetic_items: Path, tmp_path: Path) -> None:
    cfg = _cfg(
        synthetic_items,
        tmp_path / "run",
        num_steps=10,
        group_size=4,
        micro_batch_size=8,
        learning_rate=3e-3,
        clip_range=0.2,
        kl_beta=0.0,
        save_every=100,
    )
    train_grpo(cfg, judge=BrightnessJudgeDouble())
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    rewards = [r["reward_mean"] for r in rows]
    assert [r["step"] for r in rows] == list(range(1, 11))
    assert all(r["ratio_mean"] == pytest.approx(1.0, abs=1e-4) for r in rows)  # on-policy
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.01, rewards
    assert (tmp_path / "run" / "pipeline" / "model_index.json").is_file()
    for r in rows:  # the signal and grain columns are logged every step
        assert 0.0 <= r["groups_mixed"] <= r["groups_with_a_success"] <= 1.0
        assert np.isfinite(r["grain_excess"])


def test_penalised_rewards_subtract_only_added_grain() -> None:
    rewards = penalised_rewards([1.0, 1.0, 0.5], [10.0, -3.0, 0.0], grain_penalty=0.02)
    assert rewards.tolist() == pytest.approx([0.8, 1.0, 0.5])
    assert penalised_rewards([0.3], [50.0], 0.0).tolist() == pytest.approx([0.3])
    with pytest.raises(ValueError, match=r"grain_penalty must be >= 0, got -0\.1"):
        GRPOConfig(grain_penalty=-0.1)


def test_group_success_shares() -> None:
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    shares = group_success_shares([True, False, True, True, False, False], ids)
    assert shares == pytest.approx({"groups_with_a_success": 2 / 3, "groups_mixed": 1 / 3})


def test_kl_and_off_policy_minibatches(synthetic_items: Path, tmp_path: Path) -> None:
    cfg = _cfg(
        synthetic_items,
        tmp_path / "run",
        num_steps=2,
        kl_beta=1.0,
        clip_range=0.2,
        learning_rate=3e-3,
        minibatches_per_step=2,
    )
    train_grpo(cfg, judge=BrightnessJudgeDouble())
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["kl"] > 0.0  # the second minibatch already moved away from the reference
    assert rows[1]["kl"] > 0.0
    # the second minibatch is scored by weights the first one updated: ratio != 1
    assert abs(rows[0]["ratio_mean"] - 1.0) > 1e-7


def test_a_model_with_dropout_is_exactly_on_policy_on_the_first_minibatch(
    synthetic_items: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ratio compares the sampling pass with the re-scoring pass: with dropout in the
    network (here after the first block; a LoRA adapter can bring one), both must run the
    same network, so one minibatch per step gives a ratio of exactly 1 and no clipping."""
    load = grpo_trainer.load_pipeline

    def load_with_dropout(cfg: GRPOConfig, path: Path | None):
        pipe = load(cfg, path)
        block = pipe.transformer.blocks[0]
        block.register_forward_hook(
            lambda m, _inp, out: torch.nn.functional.dropout(out, 0.5, training=m.training)
        )
        return pipe

    monkeypatch.setattr(grpo_trainer, "load_pipeline", load_with_dropout)
    cfg = _cfg(synthetic_items, tmp_path / "run", num_steps=1, clip_range=0.01)
    train_grpo(replace(cfg, minibatches_per_step=1), judge=BrightnessJudgeDouble())
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    assert row["clip_fraction"] == 0.0


def test_resume_after_kill_matches_an_uninterrupted_run(
    synthetic_items: Path, tmp_path: Path
) -> None:
    judge = BrightnessJudgeDouble()
    straight = _cfg(synthetic_items, tmp_path / "straight", num_steps=3, kl_beta=0.1)
    train_grpo(straight, judge=judge)

    killed = _cfg(synthetic_items, tmp_path / "killed", num_steps=2, kl_beta=0.1)
    train_grpo(killed, judge=judge)
    # What a kill during the next checkpoint leaves behind: a partial temporary folder
    # (executor_core.atomic_io's name for it), and a metrics line of a step never saved.
    partial = tmp_path / "killed" / "checkpoints" / ".step_000003.k1ll3d.tmp"
    partial.mkdir()
    (partial / "transformer.safetensors").write_bytes(b"half")
    with (tmp_path / "killed" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 3, "reward_mean": -1.0}) + "\n")
    shutil.rmtree(tmp_path / "killed" / "pipeline")
    assert latest_checkpoint(tmp_path / "killed").name == "step_000002"

    train_grpo(replace(killed, num_steps=3), judge=judge)
    assert not partial.exists()  # the next save clears what the killed one left
    a = load_file(tmp_path / "straight" / "checkpoints" / "step_000003" / "transformer.safetensors")
    b = load_file(tmp_path / "killed" / "checkpoints" / "step_000003" / "transformer.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    rows = [json.loads(x) for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[2]["reward_mean"] != -1.0


def test_lora_trains_only_the_adapter_and_exports_fused(
    synthetic_items: Path, tmp_path: Path
) -> None:
    cfg = _cfg(
        synthetic_items,
        tmp_path / "lora",
        num_steps=2,
        lora_rank=2,
        kl_beta=1.0,
        clip_range=0.2,
        learning_rate=1e-2,
    )
    out = train_grpo(cfg, judge=BrightnessJudgeDouble())
    rows = [json.loads(x) for x in (tmp_path / "lora" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["kl"] == 0.0  # LoRA B starts at 0: the policy is the reference
    assert rows[1]["kl"] > 0.0
    saved = load_file(tmp_path / "lora" / "checkpoints" / "step_000002" / "transformer.safetensors")
    assert saved
    assert all("lora_" in k for k in saved)
    fused = load_video_pipeline(out, "debug").transformer
    base = load_video_pipeline(None, "debug", seed=cfg.seed).transformer
    assert not any("lora" in n for n, _ in fused.named_parameters())
    changed = [
        n
        for n, p in fused.named_parameters()
        if not torch.equal(p, dict(base.named_parameters())[n])
    ]
    assert changed
    assert all("attn" in n for n in changed), changed


def test_noise_free_rollouts_are_the_pipeline_videos(synthetic_items: Path) -> None:
    """The GRPO sampler conditions, seeds and steps exactly like ExecutorVideoPipeline: with
    (almost) no SDE noise its videos are the pipeline's own for the same seeds."""
    torch.set_num_threads(1)
    cfg = replace(PRESETS["debug"], items=synthetic_items, eta=1e-6, group_size=2)
    pipe = load_video_pipeline(None, cfg.model_preset, "cpu", seed=cfg.seed)
    items = load_items(synthetic_items, limit=2)
    roll = sample_groups(pipe, items, cfg, step=0)
    base = cfg.seed * 1_000_003  # sample_groups' seeds at step 0: base + slot
    videos = pipe(
        [it.image_rgb for it in items for _ in range(cfg.group_size)],
        [it.prompt for it in items for _ in range(cfg.group_size)],
        seed=[base + i for i in range(len(items) * cfg.group_size)],
        num_inference_steps=cfg.num_inference_steps,
    ).frames
    np.testing.assert_allclose(roll.frames.astype(int), videos.astype(int), atol=1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize(
    "field",
    [
        "learning_rate",
        "clip_range",
        "kl_beta",
        "advantage_clip",
        "max_grad_norm",
        "anchor_beta",
        "policy_weight",
        "grain_penalty",
        "max_minutes",
        "guidance_scale",
        "weight_decay",
    ],
)
def test_config_rejects_non_finite_values(field: str, bad: float) -> None:
    with pytest.raises(ValueError, match=rf"{field}.*{bad}"):
        replace(PRESETS["debug"], **{field: bad})


def test_distill_and_vlm_configs_reject_non_finite_values() -> None:
    from self_distillation.distill import DistillConfig
    from self_distillation.judges.execution_aware import ExecutionAwareJudgeConfig
    from self_distillation.vlm_backends import HTTPVLMConfig, TransformersVLMConfig

    nan = float("nan")
    with pytest.raises(ValueError, match=r"learning_rate.*nan"):
        DistillConfig(learning_rate=nan)
    with pytest.raises(ValueError, match=r"temperature.*inf"):
        TransformersVLMConfig(temperature=float("inf"))
    for name in ("temperature", "timeout_s", "retry_backoff_s"):
        with pytest.raises(ValueError, match=f"{name}.*nan"):
            HTTPVLMConfig(**{name: nan})
    assert HTTPVLMConfig(temperature=0.0).temperature == 0.0  # greedy decoding stays valid
    for name in ("max_growth", "max_step_growth"):
        with pytest.raises(ValueError, match=f"{name}.*nan"):
            ExecutionAwareJudgeConfig(**{name: nan})
