"""``executor-dreamgen``: DreamGen-style closed-loop evaluation of LeRobot policies in sim.

Each policy (``conditions``: a name and a ``pretrained_model/`` folder, e.g. ACT trained on
N expert demos per task alone vs the same demos plus neural trajectories,
``visuomotor_policy.train_policy``) runs every item of three splits through the goal
runner's policy mode (``GoalRunner.for_policy``) over ``executor_sim.SimArm``: the loop the
robot runs, with every chunk made feasible and retimed, the task predicate asked after
every chunk, the step budget ``max_steps`` as the goal timeout in simulated time.

Splits (items from ``self_distillation.worldtasks_splits``, held-out seeds >= 1,000,000):

* ``held_out``: the training tasks (compositions in the expert demos) in new layouts;
* ``novel_behaviour``: ``executor_sim.NOVEL_COMPOSITIONS``, left out of the expert demos
  (``train_policy.hold_out_novel``) and present only in the neural trajectories;
* ``novel_environment``: the training tasks with the camera moved (``camera_jitter_m``,
  uniform per axis; the expert demos have a fixed camera).

``seed_set`` picks disjoint seed ranges: ``validation`` to choose settings, ``report`` for
the figures, ``test`` (up to 800 items per split) for a verdict written down before any of
its items is run. ``n_action_steps`` (actions executed per inference; 0: each policy's own) and
``temporal_ensemble_coeff`` (ACT's temporal ensembling) set the chunking of every condition
alike (``visuomotor_policy.PolicyIOConfig``). Every condition gets the same items, so the
differences are paired (an item bootstrap, ``self_distillation.stats.paired_difference``);
rates carry Wilson intervals and per-family rates.

    executor-dreamgen --preset debug
    executor-dreamgen --preset sim --num_episodes 24
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from executor_core.atomic_io import atomic_path, write_json_atomic, write_text_atomic
from executor_core.config_cli import cli_main, config_to_dict, configure_cli_logging, parse_config
from executor_core.goal_runner import GoalRunner, GoalRunnerConfig, Guard
from executor_core.video_io import save_video_mp4
from executor_sim.env import EnvConfig, make_env
from executor_sim.sim_arm import SimArm
from self_distillation.closed_loop import task_for_item
from self_distillation.stats import paired_difference, success_rate
from self_distillation.task_items import TaskItem
from self_distillation.worldtasks_splits import SplitSpec, build_split, item_family
from visuomotor_policy.configuration_policy import PolicyIOConfig
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("held_out", "novel_behaviour", "novel_environment")
# (worldtasks split that builds the items, first seed of the report range)
_SPLIT_SOURCE: dict[str, tuple[str, int]] = {
    "held_out": ("seen", 1_400_000),
    "novel_behaviour": ("novel_composition", 1_420_000),
    "novel_environment": ("seen", 1_440_000),
}
VALIDATION_OFFSET = 100_000  # validation seeds: the report range + this
MAX_EPISODES = 400  # keeps every split's seeds (<= 50 per item) inside its 20,000 range
# the test set: its own ranges, 40,000 seeds apart (800 items of <= 50 scenes each), above
# every other evaluation's seeds
_TEST_FIRST_SEED: dict[str, int] = {
    "held_out": 1_600_000,
    "novel_behaviour": 1_640_000,
    "novel_environment": 1_680_000,
}
MAX_TEST_EPISODES = 800
SEED_SETS: tuple[str, ...] = ("report", "validation", "test")


def first_seed(split: str, seed_set: str) -> int:
    """The first seed of ``split``'s range in ``seed_set``."""
    if seed_set == "test":
        return _TEST_FIRST_SEED[split]
    offset = VALIDATION_OFFSET if seed_set == "validation" else 0
    return _SPLIT_SOURCE[split][1] + offset


def max_episodes(seed_set: str) -> int:
    """How many items a split of ``seed_set`` holds."""
    return MAX_TEST_EPISODES if seed_set == "test" else MAX_EPISODES


@dataclass
class DreamGenConfig:
    # "name=path/to/pretrained_model", the first is the baseline of the paired differences
    conditions: tuple[str, ...] = (
        "expert_only=outputs/policy_sim/expert_only/pretrained_model",
        "expert_plus_neural=outputs/policy_sim/expert_plus_neural/pretrained_model",
    )
    splits: tuple[str, ...] = SPLITS
    num_episodes: int = 24  # items per split
    # skip the split's first items: a replication on fresh items of the same seed range
    # (items first_item .. first_item + num_episodes - 1; the first num_episodes are the same
    # items whatever first_item is)
    first_item: int = 0
    seed_set: Literal["report", "validation", "test"] = "report"
    max_steps: int = 240  # control steps (24 s at 10 Hz): the goal timeout in sim time
    camera_jitter_m: float = 0.03  # novel_environment's camera jitter
    image_size_px: int = 64
    videos_per_split: int = 2  # mp4s of the first items of each split and condition
    output: Path = Path("checkpoints/policy_sim/results.json")
    report_dir: Path = Path("outputs/policy_sim/report")
    # the runner's tolerance for targets past a joint limit (put onto the limit; further
    # aborts the goal); GoalRunnerConfig's default 0.05, at most 0.2
    limit_tolerance_rad: float = 0.05
    # chunking at evaluation time, the same for every condition (PolicyIOConfig): actions
    # executed per inference (0: the policy's own), ACT's temporal ensembling (< 0: off)
    n_action_steps: int = 0
    temporal_ensemble_coeff: float = -1.0
    num_threads: int = 1
    command: str = ""  # recorded in the results; empty: this process's command line
    # report dirs of earlier runs (e.g. one process per split): summarise their
    # episodes.jsonl together instead of evaluating
    merge_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError("conditions must name at least one policy as name=path")
        for spec in self.conditions:
            name, eq, path = spec.partition("=")
            if not (name and eq and path):
                raise ValueError(f"condition {spec!r} must be name=path/to/pretrained_model")
        names = [c.partition("=")[0] for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names must be distinct, got {names!r}")
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown or not self.splits:
            raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {unknown!r}")
        if self.seed_set not in SEED_SETS:
            raise ValueError(f"seed_set must be one of {SEED_SETS}, got {self.seed_set!r}")
        if self.num_episodes <= 0 or self.max_steps <= 0 or self.videos_per_split < 0:
            raise ValueError(
                f"need num_episodes > 0, max_steps > 0, videos_per_split >= 0; got "
                f"{self.num_episodes!r}, {self.max_steps!r}, {self.videos_per_split!r}"
            )
        if self.first_item < 0:
            raise ValueError(f"first_item must be >= 0, got {self.first_item!r}")
        limit = max_episodes(self.seed_set)
        if self.first_item + self.num_episodes > limit:
            raise ValueError(
                f"first_item + num_episodes must be <= {limit} for seed_set "
                f"{self.seed_set!r} (up to 50 scenes per item in each split's seed range), "
                f"got {self.first_item!r} + {self.num_episodes!r}"
            )
        EnvConfig(image_size_px=self.image_size_px, camera_jitter_m=self.camera_jitter_m)
        GoalRunnerConfig(limit_tolerance_rad=self.limit_tolerance_rad)  # validates it
        self.policy_io()  # validates the chunking

    def policy_io(self) -> PolicyIOConfig:
        return PolicyIOConfig(
            n_action_steps=self.n_action_steps,
            temporal_ensemble_coeff=self.temporal_ensemble_coeff,
        )

    def condition_paths(self) -> dict[str, Path]:
        return {c.partition("=")[0]: Path(c.partition("=")[2]) for c in self.conditions}


PRESETS: dict[str, DreamGenConfig] = {
    "debug": DreamGenConfig(
        conditions=(
            "a=outputs/policy_debug/pretrained_model",
            "b=outputs/policy_debug/pretrained_model",
        ),
        num_episodes=2,
        max_steps=8,
        videos_per_split=1,
        output=Path("outputs/dreamgen_debug/results.json"),
        report_dir=Path("outputs/dreamgen_debug/report"),
    ),
    "sim": DreamGenConfig(),
}


def split_items(cfg: DreamGenConfig, split: str) -> list[TaskItem]:
    source = _SPLIT_SOURCE[split][0]
    spec = SplitSpec(source, cfg.first_item + cfg.num_episodes, first_seed(split, cfg.seed_set))
    return build_split(spec, cfg.image_size_px)[cfg.first_item :]


def split_env_config(cfg: DreamGenConfig, split: str) -> EnvConfig:
    jitter = cfg.camera_jitter_m if split == "novel_environment" else 0.0
    return EnvConfig(image_size_px=cfg.image_size_px, camera_jitter_m=jitter)


def load_policy(path: Path, io: PolicyIOConfig) -> LeRobotChunkPolicy:
    return LeRobotChunkPolicy.from_pretrained(path, io)


def run_episode(
    policy: LeRobotChunkPolicy, env: Any, item: TaskItem, cfg: DreamGenConfig
) -> tuple[dict[str, Any], np.ndarray]:
    """One goal of the policy through the goal runner over the simulator."""
    task = task_for_item(env, item)
    arm = SimArm(env, task)
    runner_cfg = GoalRunnerConfig(
        timeout_s=cfg.max_steps / env.cfg.fps_hz, limit_tolerance_rad=cfg.limit_tolerance_rad
    )
    runner = GoalRunner.for_policy(policy, env.robot, runner_cfg)
    result = runner.run(task.prompt, arm, Guard(runner.config.timeout_s, clock=arm.clock))
    record = {
        "item_id": item.item_id,
        "seed": item.seed,
        "family": item_family(item),
        "prompt": task.prompt,
        "success": bool(result.success),
        "steps": arm.steps,
        "message": result.message,
    }
    return record, np.stack(arm.frames)


def evaluate(cfg: DreamGenConfig) -> dict[str, Any]:
    torch.set_num_threads(cfg.num_threads)
    began = time.perf_counter()
    io = cfg.policy_io()
    policies = {name: load_policy(path, io) for name, path in cfg.condition_paths().items()}
    episodes: list[dict[str, Any]] = []
    for split in cfg.splits:
        items = split_items(cfg, split)
        env = make_env(split_env_config(cfg, split))
        try:
            for name, policy in policies.items():
                for k, item in enumerate(items):
                    record, frames = run_episode(policy, env, item, cfg)
                    episodes.append({"split": split, "condition": name, **record})
                    if k < cfg.videos_per_split:
                        _save_video(cfg, split, name, record, frames)
                done = [
                    e["success"] for e in episodes if e["split"] == split and e["condition"] == name
                ]
                logger.info("%s / %s: %d of %d", split, name, sum(done), len(done))
        finally:
            env.close()
    results = summarise(episodes, cfg)
    results["wall_s"] = time.perf_counter() - began
    write_json_atomic(cfg.output, results)
    write_jsonl(cfg.report_dir / "episodes.jsonl", episodes)
    write_report(cfg.report_dir, results)
    return results


def merge(cfg: DreamGenConfig) -> dict[str, Any]:
    """Summarise the episodes of earlier runs (``merge_from``) as one evaluation."""
    episodes: list[dict[str, Any]] = []
    for folder in cfg.merge_from:
        path = Path(folder) / "episodes.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"no episodes.jsonl in {folder}")
        episodes += [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    episodes = _unique_episodes(episodes)
    results = summarise(episodes, cfg)
    write_json_atomic(cfg.output, results)
    write_jsonl(cfg.report_dir / "episodes.jsonl", episodes)
    write_report(cfg.report_dir, results)
    return results


def _unique_episodes(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (split, condition, item): runs that evaluated the same policy on the
    same items (a baseline beside each candidate) agree, and are counted once; runs that
    disagree are an error, because which record counts would be a choice."""
    kept: dict[tuple[str, str, str], dict[str, Any]] = {}
    for episode in episodes:
        key = (episode["split"], episode["condition"], str(episode["item_id"]))
        if key not in kept:
            kept[key] = episode
        elif kept[key] != episode:
            raise ValueError(
                f"merge_from holds two different records of condition {key[1]!r} on "
                f"{key[0]} item {key[2]!r}: rename one condition, or merge one run"
            )
    return list(kept.values())


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def _save_video(
    cfg: DreamGenConfig, split: str, condition: str, record: dict[str, Any], frames: np.ndarray
) -> None:
    verdict = "success" if record["success"] else "fail"
    name = f"{split}_{condition}_{record['item_id']}_{verdict}.mp4"
    save_video_mp4(frames, cfg.report_dir / "videos" / name, fps=10.0)


def summarise(episodes: list[dict[str, Any]], cfg: DreamGenConfig) -> dict[str, Any]:
    """``{"splits": {split: {condition: {n, success, ci95, ...}}}, "paired": {...}}``."""
    names = list(cfg.condition_paths())
    splits: dict[str, Any] = {}
    paired: dict[str, Any] = {}
    for split in cfg.splits:
        splits[split] = {}
        outcomes: dict[str, dict[str, list[bool]]] = {}
        for name in names:
            mine = [e for e in episodes if e["split"] == split and e["condition"] == name]
            rate = success_rate(sum(e["success"] for e in mine), len(mine))
            families = sorted({e["family"] for e in mine})
            splits[split][name] = {
                "n": rate.n,
                "successes": rate.successes,
                "success": rate.rate,
                "ci95": [rate.low, rate.high],
                "by_family": {
                    f: _family_rate([e["success"] for e in mine if e["family"] == f])
                    for f in families
                },
            }
            outcomes[name] = {e["item_id"]: [e["success"]] for e in mine}
        base = names[0]
        for other in names[1:]:
            d, low, high = paired_difference(outcomes[other], outcomes[base])
            paired[f"{split}: {other} - {base}"] = {
                "split": split,
                "a": other,
                "b": base,
                "difference": d,
                "ci95": [low, high],
                "n": len(outcomes[base]),
            }
    return {
        "splits": splits,
        "paired": paired,
        "command": cfg.command or " ".join(["executor-dreamgen", *sys.argv[1:]]),
        "seed_set": cfg.seed_set,
        "first_seeds": {s: first_seed(s, cfg.seed_set) for s in cfg.splits},
        "config": config_to_dict(cfg),
    }


def _family_rate(outcomes: list[bool]) -> dict[str, Any]:
    return {"n": len(outcomes), "success": float(np.mean(outcomes)) if outcomes else 0.0}


def write_report(out: Path, results: dict[str, Any]) -> Path:
    """``report.md`` (tables) and ``success.png`` (rates with 95 % intervals)."""
    plot_rates(out / "success.png", results)
    lines = ["# DreamGen-style evaluation", "", f"command: `{results['command']}`", ""]
    lines += ["| split | condition | success [95 %] | by family |", "|---|---|---|---|"]
    for split, by_condition in results["splits"].items():
        for name, row in by_condition.items():
            fam = ", ".join(
                f"{f} {100 * v['success']:.0f} % of {v['n']}" for f, v in row["by_family"].items()
            )
            low, high = row["ci95"]
            rate = f"{row['successes']}/{row['n']} = {100 * row['success']:.0f} %"
            lines.append(
                f"| {split} | {name} | {rate} [{100 * low:.0f}, {100 * high:.0f}] | {fam} |"
            )
    lines += ["", "| paired difference | points [95 %] |", "|---|---|"]
    for key, row in results["paired"].items():
        lo, hi = row["ci95"]
        lines.append(
            f"| {key} | {100 * row['difference']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] |"
        )
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def plot_rates(path: Path, results: dict[str, Any]) -> None:
    splits = list(results["splits"])
    names = list(next(iter(results["splits"].values())))
    fig, ax = plt.subplots(figsize=(2.2 * len(splits) + 2, 3.5))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        rows = [results["splits"][s][name] for s in splits]
        rates = np.array([r["success"] for r in rows])
        ci = np.array([r["ci95"] for r in rows])
        err = np.clip(np.stack([rates - ci[:, 0], ci[:, 1] - rates]), 0.0, None)
        x = np.arange(len(splits)) + (k - (len(names) - 1) / 2) * width
        ax.bar(x, rates, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(np.arange(len(splits)), splits)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("closed-loop success")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


@cli_main("executor-dreamgen")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(DreamGenConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    if cfg.merge_from:
        results = merge(cfg)
    else:
        for name, path in cfg.condition_paths().items():
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"condition {name!r}: no policy checkpoint at {path}")
        results = evaluate(cfg)
    print(json.dumps({"splits": results["splits"], "paired": results["paired"]}, indent=2))
    print(f"results: {cfg.output}")


if __name__ == "__main__":
    sys.exit(main())
