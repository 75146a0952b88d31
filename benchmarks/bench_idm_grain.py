"""Does grain on the goal frames cost the IDM execution? Closed-loop replay of the IDM's
held-out expert episodes with the goal frames clean and with i.i.d. Gaussian pixel noise
added (the simulator's own frames, the IDM's other input, stay clean), as
``executor-imagined-goals`` replays them with re-generated goals.

    .venv/bin/python benchmarks/bench_idm_grain.py --noise_std 0,2,4,8,12 \\
        --grainy outputs/grpo_gpu3/rl_anchor/pipeline --reference checkpoints/executor_anchor_sim \\
        --transplant_scales 1,2,4 --output checkpoints/executor_sim/results/rl_gpu3/idm_grain.json

Two kinds of grain: i.i.d. pixel noise (``--noise_std``, grey levels), which matches a
video model's grain in energy but not in pattern; and the grain a model really adds,
transplanted (``--grainy`` and ``--reference``: per imagined frame, the grainy model's
high-pass minus its reference's on the same validation items and seeds, added at
``--transplant_scales``). Each level reports the goal frames' grain
(``executor_core.frame_stats.high_freq_energy``, the scale of
``benchmarks/side_by_side_models.py``), the replay success with its Wilson interval and per
family, and the paired difference from the clean goals (item bootstrap).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from executor_core.atomic_io import write_json_atomic
from executor_core.config_cli import OneLineArgumentParser, cli_main, require_local_dataset
from executor_core.frame_stats import high_freq_energy
from inverse_dynamics.dataset_idm import EpisodeArrays, load_episodes
from inverse_dynamics.evaluate_idm import env_for_dataset, episode_records, replay_episode
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.demo_generation import item_seed
from self_distillation.imagined_goals import split_of
from self_distillation.stats import paired_difference, success_rate
from self_distillation.video_models import load_video_pipeline
from self_distillation.worldtasks_splits import SplitSpec, build_split


@dataclass(frozen=True)
class GrainConfig:
    output: Path
    idm: Path = Path("checkpoints/idm_sim")
    dataset_root: Path = Path("data/sim_v1")
    noise_std: tuple[float, ...] = (0.0, 2.0, 4.0, 8.0)  # grey levels (0-255), 0 = clean
    # the transplanted grain: a grainy model's high-pass minus its reference's (same items,
    # same seeds), added at these scales; no models: not measured
    grainy: Path | None = None
    reference: Path | None = None
    transplant_scales: tuple[float, ...] = (1.0, 2.0)
    transplant_items: int = 16  # validation items (seen, seeds 1,400,000+) drawn by both
    max_episodes: int | None = None  # None: all the IDM's held-out episodes
    settle_steps: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.noise_std or any(not 0.0 <= s <= 64.0 for s in self.noise_std):
            raise ValueError(f"noise_std must be levels in [0, 64], got {self.noise_std!r}")
        if 0.0 not in self.noise_std:
            raise ValueError(f"noise_std must include 0 (the clean goals), got {self.noise_std!r}")
        if (self.grainy is None) != (self.reference is None):
            raise ValueError("grainy and reference go together (the grain is their difference)")
        for path in (self.grainy, self.reference):
            if path is not None and not Path(path).is_dir():
                raise ValueError(f"no such video pipeline folder: {str(path)!r}")
        if any(not 0.0 < s <= 8.0 for s in self.transplant_scales):
            raise ValueError(f"transplant_scales must be in (0, 8], got {self.transplant_scales!r}")
        if not 1 <= self.transplant_items <= 64:
            raise ValueError(f"transplant_items must be in [1, 64], got {self.transplant_items!r}")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ValueError(f"max_episodes must be >= 1 or None, got {self.max_episodes!r}")


def _episode_rng(episode: EpisodeArrays, seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + episode.episode_index)


def with_noise(episode: EpisodeArrays, noise: torch.Tensor) -> EpisodeArrays:
    """The episode's recorded frames (the replay's goals) plus ``noise`` (same shape, grey
    levels), rounded and kept in 0-255."""
    noisy = (episode.frames.float() + noise).round().clamp(0, 255).to(torch.uint8)
    return replace(episode, frames=noisy)


def iid_grain(episode: EpisodeArrays, std: float, seed: int) -> EpisodeArrays:
    """Gaussian noise of ``std`` grey levels per pixel and channel, seeded per episode."""
    if std == 0:
        return episode
    gen = _episode_rng(episode, seed)
    return with_noise(episode, torch.randn(episode.frames.shape, generator=gen) * std)


def high_pass(frames: np.ndarray) -> np.ndarray:
    """(T, S, S, 3) -> the frames minus their 1 px Gaussian blur, float32."""
    x = frames.astype(np.float32)
    return x - np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in x])


def grain_residuals(cfg: GrainConfig) -> np.ndarray:
    """(N, 3, S, S) float32: per imagined frame after the first, the grainy model's high-pass
    minus the reference's, on the same validation items and seeds (what the grainy model
    adds beyond the reference's own edges)."""
    assert cfg.grainy is not None
    assert cfg.reference is not None
    items = build_split(SplitSpec("seen", cfg.transplant_items, 1_400_000))
    images = [it.image_rgb for it in items]
    prompts = [it.prompt for it in items]
    seeds = [item_seed(it.item_id, 0) for it in items]
    videos = {}
    for name, path in (("grainy", cfg.grainy), ("reference", cfg.reference)):
        pipe = load_video_pipeline(path, "sim", "cpu")
        videos[name] = np.stack(pipe(images, prompts, seed=seeds).frames)[:, 1:]
    diff = high_pass(videos["grainy"].reshape(-1, *videos["grainy"].shape[2:])) - high_pass(
        videos["reference"].reshape(-1, *videos["reference"].shape[2:])
    )
    return np.ascontiguousarray(diff.transpose(0, 3, 1, 2))


def transplanted_grain(
    episode: EpisodeArrays, residuals: np.ndarray, scale: float, seed: int
) -> EpisodeArrays:
    """Each recorded frame plus ``scale`` x one residual drawn at random (seeded per
    episode)."""
    gen = _episode_rng(episode, seed)
    idx = torch.randint(len(residuals), (episode.frames.shape[0],), generator=gen)
    return with_noise(episode, scale * torch.from_numpy(residuals[idx.numpy()]))


def frames_energy(episode: EpisodeArrays) -> float:
    return high_freq_energy(episode.frames.permute(0, 2, 3, 1).numpy())


def replay_level(
    policy: InverseDynamicsPolicy,
    env: Any,
    records: dict[int, dict[str, Any]],
    episodes: list[EpisodeArrays],
    settle_steps: int,
) -> tuple[dict[str, Any], list[bool]]:
    """Closed-loop replay of every episode with its (perturbed) goal frames."""
    families = [records[e.episode_index]["task_family"] for e in episodes]
    oks = [
        replay_episode(policy, env, records[e.episode_index], e, "closed_loop", settle_steps)[0]
        for e in episodes
    ]
    rate = success_rate(sum(oks), len(oks))
    return {
        "goal_grain": round(float(np.mean([frames_energy(e) for e in episodes])), 3),
        "n": len(oks),
        "success": rate.rate,
        "ci95": [rate.low, rate.high],
        "by_family": {
            fam: f"{sum(o for o, f in zip(oks, families, strict=True) if f == fam)}"
            f"/{families.count(fam)}"
            for fam in sorted(set(families))
        },
        "per_episode": [bool(o) for o in oks],
    }, oks


def run(cfg: GrainConfig) -> dict[str, Any]:
    require_local_dataset(cfg.dataset_root)
    policy = InverseDynamicsPolicy.from_pretrained(cfg.idm)
    eps = split_of(cfg.idm, cfg.dataset_root, "heldout")[: cfg.max_episodes]
    records = episode_records(cfg.dataset_root)
    episodes = load_episodes(cfg.dataset_root, policy.config, eps)
    perturbations: dict[str, Callable[[EpisodeArrays], EpisodeArrays]] = {
        f"iid_std_{std:g}": partial(iid_grain, std=std, seed=cfg.seed) for std in cfg.noise_std
    }
    if cfg.grainy is not None:
        residuals = grain_residuals(cfg)
        for scale in cfg.transplant_scales:
            perturbations[f"transplant_x{scale:g}"] = partial(
                transplanted_grain, residuals=residuals, scale=scale, seed=cfg.seed
            )
    env = env_for_dataset(cfg.dataset_root, policy.config.image_size_px)
    levels: dict[str, Any] = {}
    oks: dict[str, list[bool]] = {}
    t0 = time.perf_counter()
    try:
        for key, perturb in perturbations.items():
            perturbed = [perturb(e) for e in episodes]
            levels[key], oks[key] = replay_level(policy, env, records, perturbed, cfg.settle_steps)
    finally:
        env.close()
    ids = [str(e.episode_index) for e in episodes]
    clean = {i: [o] for i, o in zip(ids, oks["iid_std_0"], strict=True)}
    for key in levels:
        if key != "iid_std_0":
            other = {i: [o] for i, o in zip(ids, oks[key], strict=True)}
            levels[key]["minus_clean"] = [round(v, 4) for v in paired_difference(other, clean)]
    return {
        "command": "benchmarks/bench_idm_grain.py " + " ".join(sys.argv[1:]),
        "hardware": "2-core CPU",
        "idm": str(cfg.idm),
        "dataset_root": str(cfg.dataset_root),
        "grainy": None if cfg.grainy is None else str(cfg.grainy),
        "reference": None if cfg.reference is None else str(cfg.reference),
        "episodes": [e.episode_index for e in episodes],
        "wall_s": round(time.perf_counter() - t0, 1),
        "levels": levels,
    }


def parse_numbers(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated numbers, got {text!r}") from None


@cli_main("bench_idm_grain")
def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="bench_idm_grain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="the JSON to write")
    parser.add_argument("--idm", type=Path, default=Path("checkpoints/idm_sim"))
    parser.add_argument("--dataset_root", type=Path, default=Path("data/sim_v1"))
    parser.add_argument("--noise_std", default="0,2,4,8", help="grey levels, 0 included")
    parser.add_argument("--grainy", type=Path, default=None, help="a grainy video pipeline")
    parser.add_argument("--reference", type=Path, default=None, help="its smooth reference")
    parser.add_argument("--transplant_scales", default="1,2", help="scales of its grain")
    parser.add_argument("--transplant_items", type=int, default=16)
    parser.add_argument("--max_episodes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = GrainConfig(
        output=args.output,
        idm=args.idm,
        dataset_root=args.dataset_root,
        noise_std=parse_numbers(args.noise_std, "--noise_std"),
        grainy=args.grainy,
        reference=args.reference,
        transplant_scales=parse_numbers(args.transplant_scales, "--transplant_scales"),
        transplant_items=args.transplant_items,
        max_episodes=args.max_episodes,
        seed=args.seed,
    )
    torch.set_num_threads(1)
    result = run(cfg)
    write_json_atomic(cfg.output, result)
    summary = {
        k: (v["goal_grain"], v["success"], v.get("minus_clean"))
        for k, v in result["levels"].items()
    }
    print(json.dumps({"output": str(cfg.output), "levels": summary}))


if __name__ == "__main__":
    sys.exit(main())
