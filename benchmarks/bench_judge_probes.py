"""Judge probes: how often the old and the execution-aware judge accept videos that show the
task done, and videos that only look done; plus the executed success of expert and frozen
videos with its cost per video.

Probe videos are rendered by the simulator (``executor_sim.probe_videos``: expert episodes,
the first frame repeated, the task cube teleported to the goal, a copy appearing at the goal,
the wrong cube moved, a cube held over the goal, a cube sliding with no arm), 16 frames at
stride 4 and 64 px like the video models' clips, on held-out seeds (``seed_start`` on,
families in turn). Targets (issue 13): at least 95 % of expert videos pass the judge, at most
5 % of each adversarial kind. Executed success (``self_distillation.executed_success``) runs
the expert and the frozen videos through the goal runner with the IDM (one segment, no
replanning), in process and with a ``workers`` process pool, and prints seconds per video.

    MUJOCO_GL=egl HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_judge_probes.py \
        --num_seeds 64 --output_json outputs/judge_probes/probes.json
    .venv/bin/python benchmarks/bench_judge_probes.py --preset debug     # seconds
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from executor_core.atomic_io import write_json_atomic
from executor_core.config_cli import cli_main, config_to_dict, parse_config
from executor_sim.env import EnvConfig, make_env
from executor_sim.generate import HELD_OUT_SEED_START
from executor_sim.probe_videos import PROBE_KINDS, ProbeConfig, render_probe
from executor_sim.tasks import TASK_FAMILIES
from self_distillation.executed_success import ExecutedSuccessConfig, SimStart, execute_videos
from self_distillation.judges.execution_aware import SCORE_NAMES, ExecutionAwareJudge
from self_distillation.judges.programmatic import ProgrammaticJudge

EXPERT_TARGET = 0.95
ADVERSARIAL_TARGET = 0.05


@dataclass(frozen=True)
class BenchJudgeProbesConfig:
    num_seeds: int = 64  # probe videos per kind
    seed_start: int = HELD_OUT_SEED_START
    kinds: tuple[str, ...] = PROBE_KINDS
    image_size_px: int = 64
    output_json: Path | None = None
    executed_seeds: int = 32  # expert and frozen videos executed each (0: skip)
    workers: int = 2  # the executed-success process pool (also run in process)
    idm_path: Path = Path("checkpoints/idm_sim")

    def __post_init__(self) -> None:
        if self.num_seeds < 1 or self.executed_seeds < 0 or self.workers < 1:
            raise ValueError(
                f"need num_seeds >= 1, executed_seeds >= 0, workers >= 1; got "
                f"{self.num_seeds!r}, {self.executed_seeds!r}, {self.workers!r}"
            )
        if self.seed_start < HELD_OUT_SEED_START:
            raise ValueError(
                f"seed_start must be held out (>= {HELD_OUT_SEED_START}), got {self.seed_start!r}"
            )
        unknown = [k for k in self.kinds if k not in PROBE_KINDS]
        if unknown or not self.kinds:
            raise ValueError(
                f"kinds must be a non-empty subset of {PROBE_KINDS}, got {self.kinds!r}"
            )


PRESETS = {"debug": BenchJudgeProbesConfig(num_seeds=3, executed_seeds=2)}


def plan(cfg: BenchJudgeProbesConfig, n: int) -> list[tuple[int, str]]:
    """(seed, family) of the i-th probe of every kind: held-out seeds, families in turn."""
    return [(cfg.seed_start + i, TASK_FAMILIES[i % len(TASK_FAMILIES)]) for i in range(n)]


def judge_probes(cfg: BenchJudgeProbesConfig) -> dict[str, Any]:
    """Pass rates per kind of both judges, with per-score and per-family figures."""
    env = make_env(EnvConfig(image_size_px=cfg.image_size_px))
    probe_cfg = ProbeConfig(image_size_px=cfg.image_size_px)
    old, new = ProgrammaticJudge(), ExecutionAwareJudge()
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    render_s = judge_s = 0.0
    try:
        for seed, family in plan(cfg, cfg.num_seeds):
            for kind in cfg.kinds:
                t0 = time.perf_counter()
                probe = render_probe(env, kind, seed, family, probe_cfg)
                t1 = time.perf_counter()
                row = {"seed": seed, "family": family, "valid": probe.valid}
                if probe.valid:
                    verdict = new.judge(probe.frames, probe.record)
                    row["old"] = old.judge(probe.frames, probe.record).success
                    row["new"] = verdict.success
                    row.update(verdict.scores)
                    row.update({f"{k}_pass": v for k, v in verdict.details["passed"].items()})
                render_s += t1 - t0
                judge_s += time.perf_counter() - t1
                rows[kind].append(row)
    finally:
        env.close()
    n_videos = cfg.num_seeds * len(cfg.kinds)
    return {
        "per_kind": {kind: summarise(rows[kind]) for kind in cfg.kinds},
        "render_s_per_video": render_s / n_videos,
        "judge_s_per_video": judge_s / n_videos,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    valid = [r for r in rows if r["valid"]]
    summary: dict[str, Any] = {"n": len(valid), "invalid": len(rows) - len(valid)}
    if not valid:
        return summary
    summary["old_pass"] = _mean(r["old"] for r in valid)
    summary["new_pass"] = _mean(r["new"] for r in valid)
    for name in SCORE_NAMES:
        summary[f"{name}_pass"] = _mean(r[f"{name}_pass"] for r in valid)
        summary[f"{name}_mean"] = _mean(r[name] for r in valid)
    summary["new_pass_by_family"] = {
        f: _mean(r["new"] for r in valid if r["family"] == f)
        for f in TASK_FAMILIES
        if any(r["family"] == f for r in valid)
    }
    return summary


def _mean(values: Any) -> float:
    return round(float(np.mean([float(v) for v in values])), 4)


def executed_success(cfg: BenchJudgeProbesConfig) -> dict[str, Any]:
    """Executed success of expert and frozen videos, in process and with the pool."""
    env = make_env(EnvConfig(image_size_px=cfg.image_size_px))
    probe_cfg = ProbeConfig(image_size_px=cfg.image_size_px)
    probes = {kind: [] for kind in ("expert", "frozen")}
    try:
        for seed, family in plan(cfg, cfg.executed_seeds):
            for kind, found in probes.items():
                found.append(render_probe(env, kind, seed, family, probe_cfg))
    finally:
        env.close()
    videos = [p for found in probes.values() for p in found]
    starts = [SimStart.from_record(p.record) for p in videos]
    report: dict[str, Any] = {}
    for workers in sorted({1, cfg.workers}):
        run_cfg = ExecutedSuccessConfig(idm_path=cfg.idm_path, workers=workers)
        batch = execute_videos([p.frames for p in videos], starts, run_cfg)
        report[f"workers_{workers}"] = {
            "videos": len(videos),
            "seconds_per_video": round(batch.seconds_per_video, 4),
            "seconds_per_execution": _mean(r.seconds for r in batch.results),
            **{kind: _kind_successes(kind, videos, batch.results) for kind in probes},
        }
    runs = [[r[k]["successes"] for k in probes] for r in report.values()]
    report["workers_agree"] = all(run == runs[0] for run in runs)
    return report


def _kind_successes(kind: str, videos: list[Any], results: list[Any]) -> dict[str, Any]:
    successes = [r.success for p, r in zip(videos, results, strict=True) if p.kind == kind]
    return {"n": len(successes), "executed_success": _mean(successes), "successes": successes}


def format_table(results: dict[str, Any]) -> list[str]:
    lines = [
        f"{'kind':14s} {'n':>4s} {'old judge':>10s} {'new judge':>10s} {'task':>6s} "
        f"{'agent':>6s} {'consist':>8s}  target",
    ]
    for kind, s in results["per_kind"].items():
        if not s["n"]:
            lines.append(f"{kind:14s} {0:4d}  (no valid probe)")
            continue
        bound = f">= {EXPERT_TARGET:.0%}" if kind == "expert" else f"<= {ADVERSARIAL_TARGET:.0%}"
        target = f"{bound}: {'met' if _meets(kind, s) else 'MISSED'}"
        lines.append(
            f"{kind:14s} {s['n']:4d} {s['old_pass']:10.1%} {s['new_pass']:10.1%} "
            f"{s['task_pass']:6.0%} {s['agent_pass']:6.0%} {s['consistency_pass']:8.0%}  {target}"
        )
    return lines


@cli_main("bench_judge_probes.py")
def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    args = sys.argv[1:] if argv is None else argv
    cfg = parse_config(BenchJudgeProbesConfig, args, PRESETS)
    results = judge_probes(cfg)
    print(
        f"judge probes: seeds {cfg.seed_start}..{cfg.seed_start + cfg.num_seeds - 1}, "
        f"{cfg.image_size_px} px, 16 frames at stride 4 (columns: pass rates)"
    )
    print("\n".join(format_table(results)))
    print(
        f"rendering {results['render_s_per_video'] * 1e3:.0f} ms per probe video, "
        f"execution-aware + old judge {results['judge_s_per_video'] * 1e3:.0f} ms per video"
    )
    if cfg.executed_seeds:
        results["executed"] = executed_success(cfg)
        agree = results["executed"]["workers_agree"]
        print(f"executed success: the same results with every worker count: {agree}")
        for name, r in results["executed"].items():
            if name == "workers_agree":
                continue
            rates = ", ".join(
                f"{kind} {r[kind]['executed_success']:.1%} of {r[kind]['n']}"
                for kind in ("expert", "frozen")
            )
            print(
                f"executed success ({name.replace('_', ' ')}): {rates}; "
                f"{r['seconds_per_video']:.2f} s per video (batch wall time / videos), "
                f"{r['seconds_per_execution']:.2f} s per execution"
            )
    results["judge_probes"] = {k: s.get("new_pass") for k, s in results["per_kind"].items()}
    results["judge_probes_old"] = {k: s.get("old_pass") for k, s in results["per_kind"].items()}
    results["targets_met"] = _targets_met(results["per_kind"])
    results["config"] = config_to_dict(cfg)
    results["command"] = shlex.join(["benchmarks/bench_judge_probes.py", *args])
    if cfg.output_json is not None:
        write_json_atomic(cfg.output_json, results)
        print(f"wrote {cfg.output_json}")


def _meets(kind: str, summary: dict[str, Any]) -> bool:
    if kind == "expert":
        return summary["new_pass"] >= EXPERT_TARGET
    return summary["new_pass"] <= ADVERSARIAL_TARGET


def _targets_met(per_kind: dict[str, Any]) -> dict[str, bool]:
    return {kind: _meets(kind, s) for kind, s in per_kind.items() if s["n"]}


if __name__ == "__main__":
    sys.exit(main())
