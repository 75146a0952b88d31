"""``executor-neural-trajectories``: DreamGen-style neural trajectories as a LeRobotDataset.

For scenes and tasks drawn the way the proposal stage draws them (``SimSceneTaskSource``
over simulator seeds, or an ``executor-propose`` items folder), each generator imagines a
video: ``demonstrator_solution`` (the Demonstrator given the detailed solution) and
``executor`` (the Executor given the short prompt). Two references, not neural
trajectories (``imagined: false``), come from the simulator's scripted expert doing the same
item: ``scripted_expert``, its real frames, measured joints and actions at 10 Hz up to its
done frame (what the neural trajectories would be with a perfect world model and IDM: a
policy trained on it bounds what they can add), and ``expert_video_idm``, its real frames
at the imagined clips' rate labelled and scored by the IDM as below (a perfect world
model with our IDM). The committed IDM labels every imagined video
with pseudo-actions, open loop from consecutive imagined frames
(``InverseDynamicsPolicy.predict`` from the scene's start state, each pair's state the
previous chunk's last target), chained at 10 Hz with ``executor_core.chunks.chain_chunks``.

The episodes have the expert data's features (``executor_sim.generate.dataset_features``),
at its 10 fps:

* ``observation.images.scene``: imagined frame ``k`` held for ``frame_stride`` steps (the
  video models make one frame per ``frame_stride`` control steps, 2.5 Hz), so step ``t``
  shows frame ``t // frame_stride`` and the last frame is shown once: ``(T-1) * stride + 1``
  steps, as ``executor-generate-demos`` holds its clips;
* ``action``: the IDM's pseudo-action at step ``t`` (the last one repeated on the final
  step);
* ``observation.state``: **the state implied by the pseudo-actions**: at step 0 the scene's
  start state (the home pose every clip starts from), at step ``t > 0`` the previous
  pseudo-action target ``action[t-1]`` (a position-controlled arm that tracks its targets is
  there one control period later; the IDM chains its own state the same way);
* ``task``: the short prompt.

``meta/executor_episodes.jsonl`` carries one record per episode with ``imagined: true``,
the generator, the task, the scene and seed, the programmatic judge's verdict and score
(``judge_success``, ``judge_score``) and the executed success (``executed_success``: the
video executed in the simulator from its start state through the goal runner,
``self_distillation.executed_success``), so training can filter on either.

Sharded and resumable like ``executor-sim-generate``: every finished episode is written
atomically to ``<output_dir>/cache/<key>.npz`` (``executor_sim.rollout.Episode``); a rerun
skips cached episodes and refuses a cache made with other settings
(``cache/cache_signature.json``), shards (``--shard_index i --num_shards n``) split the
episodes, and the dataset (``<output_dir>/dataset``) is assembled by ``--assemble`` runs
(the default for one shard) into a temporary folder renamed into place.

A fraction of the scenes (``jitter_fraction``) can be rendered with a jittered camera
(``camera_jitter_m``): the same layouts seen from elsewhere, an environment the expert
demos never show (the DreamGen "new environments" setting).

    executor-neural-trajectories --preset debug
    executor-neural-trajectories --preset sim --num_scenes 48 --output_dir outputs/policy_sim/neural
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from tqdm import tqdm

from executor_core.atomic_io import atomic_path, claim_cache, remove_leftovers, write_npz_atomic
from executor_core.chunks import chain_chunks
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config, save_config_json
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.video_io import keep_thread_scheduling
from executor_sim.env import EnvConfig, TabletopEnv, make_env
from executor_sim.expert import expert_policy
from executor_sim.generate import HELD_OUT_SEED_START, IMAGE_KEY, dataset_features
from executor_sim.rollout import Episode
from executor_sim.tasks import is_novel_composition
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.demo_generation import DATASET_FPS, item_seed
from self_distillation.executed_success import ExecutedSuccessConfig, SimStart, execute_one
from self_distillation.judges.programmatic import ProgrammaticJudge
from self_distillation.judging import episode_for_item
from self_distillation.task_items import SimSceneTaskSource, TaskItem, load_items
from self_distillation.task_proposal import SceneImage, proposal_from_task_dict
from self_distillation.video_models import load_video_pipeline

logger = logging.getLogger(__name__)

NEURAL_GENERATORS: tuple[str, ...] = ("demonstrator_solution", "executor")
# Not neural trajectories: references made from the scripted expert doing the same item in
# the simulator, written the same way so that a policy trains on them through the same
# mixture. "scripted_expert": its real frames, joints and actions (a perfect world model
# and IDM: the ceiling); "expert_video_idm": its real frames at the imagined clips' rate,
# labelled and scored by the IDM as a neural trajectory is (a perfect world model, our IDM).
REFERENCE_GENERATORS: tuple[str, ...] = ("scripted_expert", "expert_video_idm")
GENERATORS: tuple[str, ...] = (*NEURAL_GENERATORS, *REFERENCE_GENERATORS)
EXPERT_STATE_SOURCE = "measured joint positions (the scripted expert in the simulator)"
STATE_SOURCE = "previous pseudo-action target; step 0: the scene's start (home) state"


@dataclass
class NeuralTrajectoryConfig:
    output_dir: Path = Path("outputs/policy_sim/neural")
    items: Path | None = None  # an executor-propose folder; None: draw sim scenes here
    first_seed: int = 200_000  # scenes first_seed .. first_seed + num_scenes - 1
    num_scenes: int = 48
    num_per_scene: int = 1  # tasks per scene, the simulator's drawn task first
    # add one held-out composition (executor_sim.NOVEL_COMPOSITIONS) per scene that allows
    # one: behaviours the expert demos never show, only the neural trajectories
    novel_per_scene: bool = True
    generators: tuple[str, ...] = NEURAL_GENERATORS  # or REFERENCE_GENERATORS
    demonstrator: Path | None = Path("checkpoints/demonstrator_sim")  # None: random (debug)
    executor: Path | None = Path("checkpoints/executor_sim")
    model_preset: str = "sim"  # architecture of a random pipeline (path None)
    num_inference_steps: int | None = None  # sampling steps; None: the pipeline's own
    idm: Path = Path("checkpoints/idm_sim")
    image_size_px: int = 64
    frame_stride: int = 4  # control steps per imagined frame
    camera_jitter_m: float = 0.0  # the jittered scenes' camera jitter (executor_sim)
    jitter_fraction: float = 0.0  # share of scenes rendered with the jittered camera
    batch_size: int = 8
    seed: int = 0  # video sampling seed base (item_seed)
    judge: bool = True  # programmatic judge of every video
    executed_success: bool = True  # execute every video in the simulator (~1-2 s each)
    max_steps: int = 240  # executed success: the goal timeout in control steps
    expert_max_frames: int = 120  # scripted_expert: frames recorded at most (it ends when done)
    shard_index: int = 0
    num_shards: int = 1
    assemble: bool | None = None  # write the dataset; None: when num_shards == 1
    repo_id: str = "local/executor-neural-trajectories"
    device: str = "cpu"
    torch_threads: int = 2

    def __post_init__(self) -> None:
        if self.num_scenes <= 0 or self.num_per_scene <= 0 or self.batch_size <= 0:
            raise ValueError(
                f"need num_scenes, num_per_scene, batch_size > 0; got {self.num_scenes!r}, "
                f"{self.num_per_scene!r}, {self.batch_size!r}"
            )
        if not 0 <= self.first_seed < HELD_OUT_SEED_START - self.num_scenes:
            raise ValueError(
                f"scene seeds [{self.first_seed}, {self.first_seed + self.num_scenes}) must stay "
                f"below the held-out range starting at {HELD_OUT_SEED_START}"
            )
        unknown = [g for g in self.generators if g not in GENERATORS]
        if unknown or not self.generators:
            raise ValueError(
                f"generators must be a non-empty subset of {GENERATORS}, got {unknown}"
            )
        if self.num_inference_steps is not None and self.num_inference_steps <= 0:
            raise ValueError(
                f"num_inference_steps must be > 0 or None, got {self.num_inference_steps!r}"
            )
        positive = ("frame_stride", "max_steps", "torch_threads", "expert_max_frames")
        bad = {k: getattr(self, k) for k in positive if getattr(self, k) <= 0}
        if bad:
            raise ValueError(f"need {', '.join(positive)} > 0; got {bad}")
        if not 0.0 <= self.jitter_fraction <= 1.0:
            raise ValueError(f"jitter_fraction must be in [0, 1], got {self.jitter_fraction!r}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(
                f"need 0 <= shard_index < num_shards, got {self.shard_index!r}, {self.num_shards!r}"
            )
        # validates the image size and the jitter range
        EnvConfig(image_size_px=self.image_size_px, camera_jitter_m=self.camera_jitter_m)

    @property
    def should_assemble(self) -> bool:
        return self.num_shards == 1 if self.assemble is None else self.assemble


PRESETS: dict[str, NeuralTrajectoryConfig] = {
    "debug": NeuralTrajectoryConfig(
        output_dir=Path("outputs/neural_debug"),
        num_scenes=2,
        demonstrator=None,
        executor=None,
        model_preset="sim",  # random weights at the simulator's 64 px (the IDM's size)
        num_inference_steps=2,
        batch_size=2,
        max_steps=8,
        camera_jitter_m=0.03,
        jitter_fraction=0.5,
    ),
    "sim": NeuralTrajectoryConfig(),
}


# ------------------------------------------------------------------------- the items
def is_jittered(cfg: NeuralTrajectoryConfig, seed: int) -> bool:
    """Whether the scene of ``seed`` is rendered with the jittered camera (fixed per seed)."""
    if cfg.items is not None or cfg.jitter_fraction <= 0 or cfg.camera_jitter_m <= 0:
        return False  # items from a folder keep their own (fixed-camera) images
    return bool(np.random.default_rng([seed, 17]).random() < cfg.jitter_fraction)


def env_config(cfg: NeuralTrajectoryConfig, jittered: bool) -> EnvConfig:
    return EnvConfig(
        image_size_px=cfg.image_size_px, camera_jitter_m=cfg.camera_jitter_m if jittered else 0.0
    )


def _scene(env: TabletopEnv, seed: int) -> SceneImage:
    env.reset(seed)
    assert env.scene is not None
    assert env.task is not None
    meta = {"seed": seed, "scene": env.scene.to_json(), "task": env.task.to_json()}
    return SceneImage(f"sim{seed:06d}", env.render(), meta)


def _tasks_of_scene(cfg: NeuralTrajectoryConfig, scene: SceneImage) -> list[dict[str, Any]]:
    """The drawn task first, then others, as the proposal stage orders them (all
    compositions: the neural trajectories may show the held-out ones)."""
    tasks = SimSceneTaskSource(hold_out_novel=False).tasks_for_scene(scene.metadata)
    novel = [t for t in tasks if _novel(t)]
    chosen = [t for t in tasks if not _novel(t)][: cfg.num_per_scene]
    if cfg.novel_per_scene and novel:
        chosen.append(novel[0])
    return chosen


def _novel(task: dict[str, Any]) -> bool:
    return is_novel_composition(task["task_family"], task["object"], task.get("target") or "")


def draw_items(cfg: NeuralTrajectoryConfig) -> list[TaskItem]:
    """Items (scene image + task) of ``num_scenes`` simulator seeds."""
    if cfg.items is not None:
        return load_items(cfg.items)
    envs = {j: make_env(env_config(cfg, j)) for j in (False, True)}
    items: list[TaskItem] = []
    try:
        for seed in range(cfg.first_seed, cfg.first_seed + cfg.num_scenes):
            scene = _scene(envs[is_jittered(cfg, seed)], seed)
            for k, task in enumerate(_tasks_of_scene(cfg, scene)):
                items.append(
                    TaskItem(
                        item_id=f"{scene.scene_id}-{k}",
                        scene_id=scene.scene_id,
                        image_rgb=scene.image_rgb,
                        proposal=proposal_from_task_dict(task, source="neural_trajectories"),
                        scene=scene.metadata["scene"],
                        seed=seed,
                    )
                )
    finally:
        for env in envs.values():
            env.close()
    return items


# ------------------------------------------------------------------------- labelling
def episode_key(item: TaskItem, generator: str) -> str:
    return f"{item.item_id}__{generator}"


def cache_path(cfg: NeuralTrajectoryConfig, key: str) -> Path:
    return Path(cfg.output_dir) / "cache" / f"{key}.npz"


def label_video(
    video: np.ndarray, idm: InverseDynamicsPolicy, start_rad: np.ndarray, frame_stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, states, actions) at the control rate for one imagined video (T, S, S, 3):
    frames held ``frame_stride`` steps, the IDM's chained pseudo-actions, and the states
    they imply (start state, then the previous target)."""
    chunks = idm.predict(video, start_rad)
    trajectory = chain_chunks(chunks, tuple(idm.config.joint_names))
    targets = trajectory.positions_rad.astype(np.float32)  # ((T-1) * stride, J)
    if targets.shape[0] != (video.shape[0] - 1) * frame_stride:
        raise ValueError(
            f"the IDM gave {targets.shape[0]} actions for {video.shape[0]} frames; expected "
            f"{(video.shape[0] - 1) * frame_stride} (frame_stride {frame_stride})"
        )
    images = np.concatenate([np.repeat(video[:-1], frame_stride, axis=0), video[-1:]])
    actions = np.concatenate([targets, targets[-1:]])
    states = np.concatenate([np.asarray(start_rad, np.float32)[None], targets])
    return images, states, actions


def _pipeline_for(cfg: NeuralTrajectoryConfig, generator: str) -> Any:
    path = cfg.demonstrator if generator == "demonstrator_solution" else cfg.executor
    return load_video_pipeline(path, cfg.model_preset, cfg.device, cfg.seed)


def _text_for(item: TaskItem, generator: str) -> str:
    p = item.proposal
    return p.solution_text if generator == "demonstrator_solution" else p.task_prompt


class _Scorer:
    """The programmatic judge and the executed success of one video (each optional)."""

    def __init__(self, cfg: NeuralTrajectoryConfig, idm: InverseDynamicsPolicy) -> None:
        self.cfg, self.idm = cfg, idm
        self.judge = ProgrammaticJudge() if cfg.judge else None
        self.exec_cfg = ExecutedSuccessConfig(
            idm_path=cfg.idm, image_size_px=cfg.image_size_px, max_steps=cfg.max_steps
        )
        self.envs: dict[bool, TabletopEnv] = {}

    def score(self, video: np.ndarray, item: TaskItem, execute: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"judge_success": None, "judge_score": None}
        if self.judge is not None:
            verdict = self.judge.judge(video, episode_for_item(item))
            out.update(judge_success=bool(verdict.success), judge_score=float(verdict.score))
        out.update(executed_success=None, executed_message=None)
        if self.cfg.executed_success and execute:
            jittered = is_jittered(self.cfg, int(item.seed or 0))
            if jittered not in self.envs:
                self.envs[jittered] = make_env(env_config(self.cfg, jittered))
            done = execute_one(
                self.envs[jittered], self.idm, video, SimStart.from_item(item), self.exec_cfg
            )
            out.update(executed_success=bool(done.success), executed_message=done.message)
        return out

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def episode_metadata(
    cfg: NeuralTrajectoryConfig, item: TaskItem, generator: str, scores: dict[str, Any]
) -> dict[str, Any]:
    p = item.proposal
    meta = p.metadata
    success = scores["executed_success"]
    if success is None:
        success = scores["judge_success"]
    reference = generator == "scripted_expert"
    return {
        "item_id": item.item_id,
        "imagined": generator in NEURAL_GENERATORS,
        "generator": generator,
        "task_family": meta.get("task_family"),
        "object": meta.get("object"),
        "target": meta.get("target") or "",
        "prompt": p.task_prompt,
        "paraphrases": list(meta.get("paraphrases", [])),
        "solution": p.solution_text,
        "success_criterion": p.success_description,
        "novel_composition": _novel(
            {
                "task_family": meta.get("task_family"),
                "object": meta.get("object"),
                "target": meta.get("target"),
            }
        ),
        **scores,
        "success": success,
        "success_source": (
            "simulator"
            if reference
            else "executed"
            if scores["executed_success"] is not None
            else "judge"
        ),
        "seed": item.seed,
        "scene": item.scene,
        "camera_jittered": is_jittered(cfg, int(item.seed or 0)),
        "video_seed": item_seed(episode_key(item, generator), cfg.seed),
        "frame_stride": 1 if reference else cfg.frame_stride,
        "state_source": EXPERT_STATE_SOURCE if reference else STATE_SOURCE,
    }


def generate_shard(cfg: NeuralTrajectoryConfig, items: list[TaskItem]) -> int:
    """Imagine, label and score this shard's missing episodes; returns how many."""
    torch.set_num_threads(cfg.torch_threads)
    jobs = [(it, g) for g in cfg.generators for it in items]
    mine = jobs[cfg.shard_index :: cfg.num_shards]
    todo = [(it, g) for it, g in mine if not cache_path(cfg, episode_key(it, g)).is_file()]
    logger.info(
        "shard %d/%d: %d episodes, %d already cached",
        cfg.shard_index,
        cfg.num_shards,
        len(mine),
        len(mine) - len(todo),
    )
    if not todo:
        return 0
    idm = InverseDynamicsPolicy.from_pretrained(cfg.idm)
    # every scene starts at the robot's home pose (TabletopEnv.reset)
    start_rad = RobotDescription.from_yaml(default_robot_path()).home_rad.astype(np.float32)
    scorer = _Scorer(cfg, idm)
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="neural", unit="episode")
    try:
        for generator in cfg.generators:
            mine_g = [it for it, g in todo if g == generator]
            if mine_g and generator in REFERENCE_GENERATORS:
                _roll_out_expert(cfg, generator, mine_g, idm, start_rad, scorer, bar)
            elif mine_g:
                _generate_with(cfg, generator, mine_g, idm, start_rad, scorer, bar)
    finally:
        scorer.close()
        bar.close()
    return len(todo)


def _cache_episode(
    cfg: NeuralTrajectoryConfig, item: TaskItem, generator: str, episode: Episode
) -> None:
    path = cache_path(cfg, episode_key(item, generator))
    write_npz_atomic(path, episode.to_npz_dict(), compressed=True)


def _generate_with(
    cfg: NeuralTrajectoryConfig,
    generator: str,
    items: list[TaskItem],
    idm: InverseDynamicsPolicy,
    start_rad: np.ndarray,
    scorer: _Scorer,
    bar: Any,
) -> None:
    pipe = _pipeline_for(cfg, generator)
    for begin in range(0, len(items), cfg.batch_size):
        batch = items[begin : begin + cfg.batch_size]
        videos = pipe(
            [it.image_rgb for it in batch],
            [_text_for(it, generator) for it in batch],
            seed=[item_seed(episode_key(it, generator), cfg.seed) for it in batch],
            num_inference_steps=cfg.num_inference_steps,
        ).frames  # (B, T, S, S, 3) uint8
        for item, video in zip(batch, videos, strict=True):
            images, states, actions = label_video(video, idm, start_rad, cfg.frame_stride)
            meta = episode_metadata(cfg, item, generator, scorer.score(video, item))
            _cache_episode(cfg, item, generator, Episode(images, states, actions, meta))
            bar.update(1)


class ExpertRun(NamedTuple):
    """The scripted expert doing one item, at the control rate, up to its done frame."""

    images: np.ndarray  # (T, S, S, 3) frame t before action t
    states_rad: np.ndarray  # (T, 6) measured joints at frame t
    actions_rad: np.ndarray  # (T, 6) targets commanded after frame t
    last_image: np.ndarray  # (S, S, 3) the done frame, after the last action
    success: bool  # the task's predicate after the last action


def expert_episode(env: TabletopEnv, item: TaskItem, max_frames: int) -> ExpertRun:
    """The scripted expert doing ``item`` in ``env`` from the item's start, up to the frame
    at which it is done (the frames an expert demo trains on with ``expert_frames
    until_done``) or ``max_frames``."""
    SimStart.from_item(item).reset(env)
    policy = expert_policy(env)
    obs = env.observation()
    images, states, actions = [], [], []
    while len(images) < max_frames:
        action = policy(env).astype(np.float32)
        if policy.done:
            break
        images.append(obs["image"])
        states.append(obs["state"])
        actions.append(action)
        obs = env.step(action)
    if not images:
        raise ValueError(f"the scripted expert did nothing on item {item.item_id!r}")
    assert env.task is not None
    success = bool(env.task.is_success(env))
    return ExpertRun(np.stack(images), np.stack(states), np.stack(actions), obs["image"], success)


def expert_clip(env: TabletopEnv, run: ExpertRun, frame_stride: int) -> np.ndarray:
    """``run`` as a clip at the imagined videos' rate: every ``frame_stride``-th frame from
    the first to the done frame, the arm held at its last target (as the expert holds once
    done) for up to ``frame_stride - 1`` more steps so that every pair spans the stride.
    ``env`` must still be where ``run`` left it."""
    frames = [*run.images, run.last_image]
    while (len(frames) - 1) % frame_stride:
        frames.append(env.step(run.actions_rad[-1])["image"])
    return np.stack(frames[::frame_stride])


def _roll_out_expert(
    cfg: NeuralTrajectoryConfig,
    generator: str,
    items: list[TaskItem],
    idm: InverseDynamicsPolicy,
    start_rad: np.ndarray,
    scorer: _Scorer,
    bar: Any,
) -> None:
    """The reference episodes. ``scripted_expert``: the expert's own frames, joints and
    actions; the judge sees its clip (``expert_clip``); ``executed_success`` is the
    simulator's verdict on the expert itself. ``expert_video_idm``: that clip labelled and
    scored exactly as an imagined video is."""
    envs: dict[bool, TabletopEnv] = {}
    try:
        for item in items:
            jittered = is_jittered(cfg, int(item.seed or 0))
            if jittered not in envs:
                envs[jittered] = make_env(env_config(cfg, jittered))
            run = expert_episode(envs[jittered], item, cfg.expert_max_frames)
            clip = expert_clip(envs[jittered], run, cfg.frame_stride)
            if generator == "scripted_expert":
                images, states, actions = run.images, run.states_rad, run.actions_rad
                scores = scorer.score(clip, item, execute=False)
                scores.update(executed_success=run.success, executed_message="the scripted expert")
            else:
                images, states, actions = label_video(clip, idm, start_rad, cfg.frame_stride)
                scores = scorer.score(clip, item)
            meta = episode_metadata(cfg, item, generator, scores)
            _cache_episode(cfg, item, generator, Episode(images, states, actions, meta))
            bar.update(1)
    finally:
        for env in envs.values():
            env.close()


# ------------------------------------------------------------------------- the dataset
def assemble_dataset(cfg: NeuralTrajectoryConfig, items: list[TaskItem]) -> Path:
    """Every cached episode -> ``output_dir/dataset`` (LeRobotDataset v3), atomically."""
    keys = [episode_key(it, g) for g in cfg.generators for it in items]
    missing = [k for k in keys if not cache_path(cfg, k).is_file()]
    if missing:
        raise ValueError(
            f"{len(missing)} episodes are not generated yet (e.g. {missing[0]!r}); run every "
            f"shard first"
        )
    final = Path(cfg.output_dir) / "dataset"
    for leftover in remove_leftovers(final.parent, final.name):
        logger.info("removed %s, left by an interrupted write", leftover)
    records: list[dict[str, Any]] = []
    with atomic_path(final, directory=True) as build:
        build.rmdir()  # LeRobot creates the folder itself
        ds = LeRobotDataset.create(
            repo_id=cfg.repo_id,
            fps=DATASET_FPS,
            features=dataset_features(cfg.image_size_px),
            root=build,
            robot_type="so101",
            use_videos=True,
        )
        for key in tqdm(keys, desc="writing", unit="episode"):
            with np.load(cache_path(cfg, key)) as data:
                episode = Episode.from_npz(data)
            for t in range(len(episode.images)):
                ds.add_frame(
                    {
                        IMAGE_KEY: episode.images[t],
                        "observation.state": episode.states_rad[t],
                        "action": episode.actions_rad[t],
                        "task": episode.metadata["prompt"],
                    }
                )
            with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
                ds.save_episode()
            records.append({"episode_index": len(records), **episode.metadata})
        with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
            ds.finalize()
        shutil.rmtree(build / "images", ignore_errors=True)
        meta = build / "meta"
        (meta / "executor_episodes.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records)
        )
        (meta / "executor_neural_summary.json").write_text(
            json.dumps(summarise(records), indent=2) + "\n"
        )
        save_config_json(cfg, meta / "executor_neural_config.json")
    logger.info("wrote %d episodes (%s) to %s", len(records), ", ".join(cfg.generators), final)
    return final


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and judged / executed success rates per generator, and the executed successes
    per family, composition (trained / held-out) and camera (fixed / jittered)."""
    out: dict[str, Any] = {"episodes": len(records)}
    for generator in sorted({r["generator"] for r in records}):
        mine = [r for r in records if r["generator"] == generator]
        row: dict[str, Any] = {"episodes": len(mine)}
        for key in ("judge_success", "executed_success"):
            scored = [bool(r[key]) for r in mine if r[key] is not None]
            row[key] = float(np.mean(scored)) if scored else None
        row["novel_composition"] = sum(bool(r["novel_composition"]) for r in mine)
        row["camera_jittered"] = sum(bool(r["camera_jittered"]) for r in mine)
        row["executed_by_group"] = _executed_by_group(mine)
        out[generator] = row
    return out


def _executed_by_group(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    """``{group: [executed, episodes]}`` over the records with an executed verdict."""
    groups: dict[str, list[int]] = {}
    for r in records:
        if r["executed_success"] is None:
            continue
        for group in (
            str(r["task_family"]),
            "held_out_composition" if r["novel_composition"] else "trained_composition",
            "camera_jittered" if r["camera_jittered"] else "camera_fixed",
        ):
            counts = groups.setdefault(group, [0, 0])
            counts[0] += bool(r["executed_success"])
            counts[1] += 1
    return dict(sorted(groups.items()))


def cache_signature(cfg: NeuralTrajectoryConfig) -> dict[str, Any]:
    """The settings an episode's content depends on; its cache key carries the rest (the
    scene seed, the task's index in the scene and the generator)."""
    fields = (
        "items",
        "num_per_scene",
        "novel_per_scene",
        "demonstrator",
        "executor",
        "model_preset",
        "num_inference_steps",
        "idm",
        "image_size_px",
        "frame_stride",
        "camera_jitter_m",
        "jitter_fraction",
        "seed",
        "judge",
        "executed_success",
        "max_steps",
        "expert_max_frames",
    )
    values = {f: getattr(cfg, f) for f in fields}
    return {f: str(v) if isinstance(v, Path) else v for f, v in values.items()}


def run(cfg: NeuralTrajectoryConfig) -> Path | None:
    began = time.perf_counter()
    out = Path(cfg.output_dir)
    claim_cache(out / "cache", cache_signature(cfg))  # a resume never mixes settings
    save_config_json(cfg, out / f"config_shard{cfg.shard_index}.json")
    if cfg.num_shards == 1:  # with several shards another one may be writing now
        for leftover in remove_leftovers(out / "cache", "*"):
            logger.info("removed %s, left by an interrupted write", leftover)
    items = draw_items(cfg)
    if not items:
        raise ValueError(f"no items drawn from {cfg.items or 'the simulator scenes'}")
    generate_shard(cfg, items)
    logger.info("shard %d done in %.0f s", cfg.shard_index, time.perf_counter() - began)
    return assemble_dataset(cfg, items) if cfg.should_assemble else None


@cli_main("executor-neural-trajectories")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(NeuralTrajectoryConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    final = run(cfg)
    if final is not None:
        summary = json.loads((final / "meta" / "executor_neural_summary.json").read_text())
        print(json.dumps(summary, indent=2))
        print(f"dataset: {final.resolve()}")


if __name__ == "__main__":
    sys.exit(main())
