"""MuJoCo tabletop world with the SO-101 arm, task family, scripted expert, LeRobot datasets.

Public API::

    from executor_sim import EnvConfig, make_env, expert_policy
    env = make_env(EnvConfig(image_size_px=64))
    obs = env.reset(seed=0)             # {"image": (64, 64, 3) uint8, "state": (6,) rad}
    policy = expert_policy(env)         # scripted expert for env.task
    obs = env.step(policy(env))         # absolute joint targets, radians
    env.task.is_success(env)
"""

import os

# MuJoCo picks its GL backend once, when it is first imported. The simulator renders
# offscreen on machines without a display (CI, servers), so default to EGL before any
# submodule imports mujoco; a MUJOCO_GL the user set (osmesa, glfw) wins.
os.environ.setdefault("MUJOCO_GL", "egl")

from executor_sim.env import EnvConfig, SimState, TabletopEnv, make_env
from executor_sim.expert import ExpertPolicy, expert_policy
from executor_sim.tasks import (
    TASK_FAMILIES,
    SceneInfo,
    Task,
    make_task,
    sample_task,
)

__all__ = [
    "TASK_FAMILIES",
    "EnvConfig",
    "ExpertPolicy",
    "SceneInfo",
    "SimState",
    "TabletopEnv",
    "Task",
    "expert_policy",
    "make_env",
    "make_task",
    "sample_task",
]
