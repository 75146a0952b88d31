"""Where does the arm lose an imagined video it fails to execute: reach, grasp or transport?

Executes a sample of labelled imagined videos (``bench_candidate_critics.py --save_videos``)
again from their items' starts, one segment through the goal runner as the labels were made,
with a simulator arm that also records, after every chunk, whether the gripper touches the
task's cube and how high the cube is. Each execution is put in one phase:

- ``executed``: the task predicate holds at the end;
- ``never_touched``: the gripper never touched the cube (the reach missed it);
- ``touched_not_lifted``: touched, never lifted 2 cm (pick-place: the grasp failed; push:
  the cube was touched but did not end on the mat);
- ``lifted_not_placed``: lifted 2 cm or more, not in place at the end (dropped, or released
  outside the target).

Each record also has the gripper joint's lowest position while it touched the cube (after a
chunk): near the expert's closed command (-0.15 rad) the jaws squeezed it, near the open one
(0.7 rad) the arm only brushed it.

    .venv/bin/python benchmarks/bench_failure_phases.py --data outputs/critic_data/train.npz \\
        --item_folder outputs/wt/pack512/proposals --videos 200 \\
        --output checkpoints/executor_sim/results/execution_critic/failure_phases_train.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from execution_critic.processing_critic import load_labelled_videos
from executor_core.goal_runner import Guard
from executor_core.trajectory_control import Interpolation
from executor_core.types import JointTrajectory
from executor_sim.env import TabletopEnv
from executor_sim.sim_arm import SimArm
from executor_sim.tasks import Task
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.closed_loop import make_env, write_bench_result
from self_distillation.executed_success import ExecutedSuccessConfig, execute_one, video_starts
from self_distillation.task_items import load_items

LIFT_M = 0.02
PHASES = ("executed", "never_touched", "touched_not_lifted", "lifted_not_placed")


class RecordingSimArm(SimArm):
    """A ``SimArm`` that records, after each chunk, contact with the task's cube and its
    height above where it started. ``last`` is the newest one (a diagnostic's handle)."""

    last: ClassVar[RecordingSimArm | None] = None

    def __init__(
        self, env: TabletopEnv, task: Task, interpolation: Interpolation = "spline"
    ) -> None:
        super().__init__(env, task, interpolation)
        self.start_z = float(env.object_position(task.obj)[2])
        self.touched = False
        self.max_lift_m = 0.0
        self.min_gripper_touching_rad: float | None = None  # how far it closed on the cube
        RecordingSimArm.last = self

    def send(self, trajectory: JointTrajectory, guard: Guard, tolerate_goal_miss: bool) -> None:
        super().send(trajectory, guard, tolerate_goal_miss)
        touching = bool(self.env.touching_gripper(self.task.obj))
        self.touched |= touching
        if touching:
            gripper = float(self.env.joint_positions_rad()[-1])
            low = self.min_gripper_touching_rad
            self.min_gripper_touching_rad = gripper if low is None else min(low, gripper)
        lift = float(self.env.object_position(self.task.obj)[2]) - self.start_z
        self.max_lift_m = max(self.max_lift_m, lift)
        self.touched |= lift > LIFT_M  # lifted: it was held, contact between chunks or not


def phase(success: bool, touched: bool, max_lift_m: float) -> str:
    if success:
        return "executed"
    if not touched:
        return "never_touched"
    return "lifted_not_placed" if max_lift_m >= LIFT_M else "touched_not_lifted"


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for family in sorted({r["family"] for r in rows}):
        of = [r for r in rows if r["family"] == family]
        counts = Counter(r["phase"] for r in of)
        out[family] = {
            "videos": len(of),
            **{p: counts.get(p, 0) for p in PHASES},
            "labels_reproduced": float(np.mean([r["success"] == r["label"] for r in of])),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="labelled videos (.npz)")
    parser.add_argument("--item_folder", type=Path, required=True, help="the videos' items")
    parser.add_argument("--videos", type=int, default=200, help="an even spread over the data")
    parser.add_argument("--idm", type=Path, default=Path("checkpoints/idm_sim"))
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.videos < 1:
        parser.error(f"--videos must be >= 1, got {args.videos}")
    t0 = time.perf_counter()
    try:
        data = load_labelled_videos(args.data)
        starts = video_starts(data.item_id, load_items(args.item_folder))
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    torch.set_num_threads(1)
    env = make_env(64)
    idm = InverseDynamicsPolicy.from_pretrained(args.idm, device="cpu")
    cfg = ExecutedSuccessConfig(idm_path=args.idm)
    chosen = np.unique(np.linspace(0, len(data.videos) - 1, args.videos).round().astype(int))
    rows = []
    for i in chosen.tolist():
        result = execute_one(env, idm, data.videos[i], starts[i], cfg, RecordingSimArm)
        arm = RecordingSimArm.last
        assert arm is not None
        rows.append(
            {
                "video": i,
                "family": str(data.family[i]),
                "label": bool(data.executed[i]),
                "success": bool(result.success),
                "touched": arm.touched,
                "max_lift_m": round(arm.max_lift_m, 4),
                "min_gripper_touching_rad": arm.min_gripper_touching_rad,
                "phase": phase(result.success, arm.touched, arm.max_lift_m),
            }
        )
    env.close()
    script = "benchmarks/bench_failure_phases.py"
    fields = {"data": str(args.data)}
    write_bench_result(args.output, script, sys.argv[1:], 1, fields, summarize(rows), rows, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
