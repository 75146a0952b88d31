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

A third kind is what a pixel-space video model's output head can draw at all
(``--span_of``, ``--pca_ceilings``; issue 14 item 4). The sim presets' transformer ends in a
linear layer from its width to one patch (``proj_out``: 160 -> 2x8x8x3 = 384 values for the
``sim`` preset), so every patch it draws lies in a fixed affine subspace of at most its width.
``--span_of PIPELINES`` projects each goal frame's patches onto that subspace of each
pipeline (least squares: the closest frame that head can output); ``--pca_ceilings
2x16x16:160`` does it for a preset that is not trained, with the best subspace of that rank
for the sim's frames (the mean plus the top principal components of the patches of the IDM's
training episodes, never its held-out ones). No trained head of that shape and width can draw
closer. The frames are patched as the model patches a clip: at the IDM's frame stride,
``patch_t`` consecutive strided frames per patch.

A fourth is the imagined-style degradation ``inverse_dynamics.train_idm`` can train with
(``--degrade BLUR_PX:NOISE_STD,...``: a Gaussian blur of the goal frames, then i.i.d. noise;
issue 14 item 3). ``--fit_to`` fits it: for each frame that ``executor-imagined-goals``
re-generated, the blur of the true frame that is closest to it, and the noise that then
restores the re-generated frames' high-frequency energy.

A fifth moves the drawn arm instead of degrading the pixels (``--arm_offset_rad 0,0.03``):
each goal frame is re-rendered from the replayed expert's state with the arm's joints moved
by N(0, that std), the gripper and the objects as they were (0: re-rendered unmoved, without
the dataset's video compression). It measures how far off an imagined arm may be drawn.

    .venv/bin/python benchmarks/bench_idm_grain.py --noise_std 0 \\
        --span_of checkpoints/executor_anchor_sim,checkpoints/demonstrator_sim \\
        --pca_ceilings 2x8x8:160,2x8x8:64,4x8x8:160,2x16x16:160,2x16x16:320 \\
        --output checkpoints/executor_sim/results/head_ceiling/head_ceiling.json
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
from inverse_dynamics.collect_corrections import arm_offset_goals
from inverse_dynamics.dataset_idm import EpisodeArrays, load_episodes
from inverse_dynamics.evaluate_idm import env_for_dataset, episode_records, replay_episode
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.demo_generation import item_seed
from self_distillation.imagined_goals import split_of, strided_clip
from self_distillation.stats import paired_difference, success_rate
from self_distillation.video_models import load_video_pipeline
from self_distillation.worldtasks_splits import SplitSpec, build_split

Patch = tuple[int, int, int]


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
    # pixel-space video pipelines whose output head's span the goal frames are projected on
    span_of: tuple[Path, ...] = ()
    # ((patch_t, patch_h, patch_w), rank): the best affine subspace of that rank for the
    # patches of the IDM's training episodes (what no head of that width can beat)
    pca_ceilings: tuple[tuple[Patch, int], ...] = ()
    pca_episodes: int = 60  # training episodes the principal components are fitted on
    # (blur_px, noise_std) pairs: a Gaussian blur of the goal frames, then i.i.d. noise
    # (the imagined-style degradation of inverse_dynamics.train_idm's goal_degrade_prob)
    degrade: tuple[tuple[float, float], ...] = ()
    # goal frames re-rendered with the arm's joints moved by N(0, each std) (0: re-rendered
    # as they were; inverse_dynamics.collect_corrections' goal_arm_noise_rad)
    arm_offset_rad: tuple[float, ...] = ()
    # an executor-imagined-goals output (re-generated clips of the IDM's held-out episodes):
    # fit the blur and noise that turn the true frames into those clips (reported only)
    fit_to: Path | None = None

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
        for path in self.span_of:
            if not Path(path).is_dir():
                raise ValueError(f"no such video pipeline folder: {str(path)!r}")
        for patch, rank in self.pca_ceilings:
            if len(patch) != 3 or min(patch) < 1:
                raise ValueError(f"a patch is 3 positive sizes (t, h, w), got {patch!r}")
            if not 1 <= rank <= 3 * patch[0] * patch[1] * patch[2]:
                raise ValueError(
                    f"rank {rank!r} is not in [1, {3 * patch[0] * patch[1] * patch[2]}] "
                    f"(the values in one {patch!r} RGB patch)"
                )
        for blur_px, noise_std in self.degrade:
            if not (0.0 <= blur_px <= 8.0 and 0.0 <= noise_std <= 64.0):
                raise ValueError(
                    f"degrade items need a blur in [0, 8] px and a noise std in [0, 64], "
                    f"got {(blur_px, noise_std)!r}"
                )
        if any(not 0.0 <= n <= 0.5 for n in self.arm_offset_rad):
            raise ValueError(f"arm_offset_rad must be in [0, 0.5] rad, got {self.arm_offset_rad!r}")
        if self.fit_to is not None and not Path(self.fit_to).is_file():
            raise ValueError(f"no such re-generated clips file: {str(self.fit_to)!r}")
        if self.pca_episodes < 1:
            raise ValueError(f"pca_episodes must be >= 1, got {self.pca_episodes!r}")


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


def blur(frames: np.ndarray, sigma_px: float) -> np.ndarray:
    """(T, S, S, 3) -> float32 frames blurred by a Gaussian of ``sigma_px`` (0: a copy)."""
    x = frames.astype(np.float32)
    return x if sigma_px == 0 else np.stack([cv2.GaussianBlur(f, (0, 0), sigma_px) for f in x])


def degraded(episode: EpisodeArrays, blur_px: float, noise_std: float, seed: int) -> EpisodeArrays:
    """Every frame blurred by ``blur_px`` (Gaussian sigma), then ``iid_grain`` of
    ``noise_std``."""
    if blur_px > 0:
        blurred = blur(episode.frames.permute(0, 2, 3, 1).numpy(), blur_px)
        as_uint8 = torch.from_numpy(blurred).round().clamp(0, 255).to(torch.uint8)
        episode = replace(episode, frames=as_uint8.permute(0, 3, 1, 2).contiguous())
    return iid_grain(episode, noise_std, seed)


BLUR_GRID_PX = np.round(np.arange(0.0, 3.01, 0.1), 2)
NOISE_GRID_STD = np.arange(0.0, 20.1, 0.5)


def best_blur_px(true: np.ndarray, drawn: np.ndarray) -> float:
    """The blur of the true frame that is closest (mean squared error) to the drawn one."""
    errors = [float(np.mean((blur(true[None], s)[0] - drawn) ** 2)) for s in BLUR_GRID_PX]
    return float(BLUR_GRID_PX[int(np.argmin(errors))])


def matching_noise_std(true: np.ndarray, blur_px: float, target: float, seed: int) -> float:
    """The i.i.d. noise std (grey levels) that, after a blur of ``blur_px``, gives the true
    frames the ``target`` high-frequency energy."""
    blurred = blur(true, blur_px)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(blurred.shape).astype(np.float32)
    energies = [high_freq_energy(np.clip(blurred + n * noise, 0, 255)) for n in NOISE_GRID_STD]
    return float(NOISE_GRID_STD[int(np.argmin(np.abs(np.array(energies) - target)))])


def fit_degradation(true_clips: np.ndarray, drawn: np.ndarray, seed: int) -> dict[str, Any]:
    """Blur and noise that turn true clips (E, T, S, S, 3) into drawn ones (same shape),
    frames after the first: the per-frame best blur's quantiles, both high-frequency
    energies, and the noise that restores the drawn energy at the median blur."""
    per_frame = [
        best_blur_px(true_clips[e, t], drawn[e, t])
        for e in range(true_clips.shape[0])
        for t in range(1, true_clips.shape[1])
    ]
    median = float(np.median(per_frame))
    true_frames = true_clips[:, 1:].reshape(-1, *true_clips.shape[2:])
    drawn_energy = high_freq_energy(drawn[:, 1:].reshape(-1, *drawn.shape[2:]))
    return {
        "blur_px_p10_p50_p90": [round(float(q), 2) for q in np.percentile(per_frame, [10, 50, 90])],
        "energy_true": round(high_freq_energy(true_frames), 2),
        "energy_drawn": round(drawn_energy, 2),
        "energy_true_at_median_blur": round(high_freq_energy(blur(true_frames, median)), 2),
        "noise_std_at_median_blur": matching_noise_std(true_frames, median, drawn_energy, seed),
        "frames": len(per_frame),
    }


def fit_to_regenerated(cfg: GrainConfig, stride: int, episodes: list[EpisodeArrays]) -> dict:
    """``fit_degradation`` per sigma of an ``executor-imagined-goals`` output."""
    assert cfg.fit_to is not None
    with np.load(cfg.fit_to, allow_pickle=False) as data:
        meta = json.loads(str(data["metadata_json"]))
        clips = data["clips"]  # (sigmas, episodes, T, S, S, 3)
    by_index = {e.episode_index: e for e in episodes}
    missing = [i for i in meta["episodes"] if i not in by_index]
    if missing:
        raise ValueError(
            f"{str(cfg.fit_to)!r} holds episodes {missing!r} that are not the IDM's held-out ones"
        )
    true = []
    for i in meta["episodes"]:
        clip = strided_clip(by_index[i], stride, clips.shape[2])
        if clip is None:
            raise ValueError(f"episode {i!r} is shorter than the clips of {str(cfg.fit_to)!r}")
        true.append(clip)
    true_clips = np.stack(true)
    return {
        f"sigma_{sigma:.2f}": fit_degradation(true_clips, clips[k], cfg.seed)
        for k, sigma in enumerate(meta["sigmas_used"])
    }


def high_pass(frames: np.ndarray) -> np.ndarray:
    """(T, S, S, 3) -> the frames minus their 1 px Gaussian blur, float32."""
    return frames.astype(np.float32) - blur(frames, 1.0)


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


# --------------------------------------------------- what a pixel-space output head can draw
@dataclass(frozen=True)
class PatchSpan:
    """The patches a linear output head can draw: ``offset`` + the span of ``basis``.

    A patch is the vector of its pixels in [-1, 1] ordered (t, h, w, RGB), the order in
    which ``WanTransformer3DModel`` unpacks ``proj_out``'s output."""

    patch: Patch
    offset: torch.Tensor  # (D,) float64
    basis: torch.Tensor  # (D, rank) float64, orthonormal columns

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    def project(self, patches: torch.Tensor) -> torch.Tensor:
        """(N, D) -> the closest patches in the span (least squares)."""
        centred = patches.double() - self.offset
        return self.offset + (centred @ self.basis) @ self.basis.T


def head_span(pipeline: Path) -> PatchSpan:
    """The affine span of a pixel-space pipeline's ``proj_out`` (what its x0 prediction, and
    so its last sampling step, can draw)."""
    pipe = load_video_pipeline(pipeline, "sim", "cpu")
    if pipe.vae is not None:
        raise ValueError(f"{str(pipeline)!r} draws in a VAE's latent space, not in pixels")
    head = pipe.transformer.proj_out
    u, singular, _ = torch.linalg.svd(head.weight.detach().double(), full_matrices=False)
    keep = singular > singular[0] * 1e-9
    patch = tuple(int(p) for p in pipe.transformer.config.patch_size)
    return PatchSpan(patch, head.bias.detach().double(), u[:, keep])  # type: ignore[arg-type]


def to_patches(frames: torch.Tensor, patch: Patch) -> torch.Tensor:
    """(T, C, S, S) -> (tokens, pt*ph*pw*C) float64, ordered as ``proj_out``'s output."""
    pt, ph, pw = patch
    t, c, h, w = frames.shape
    if t % pt or h % ph or w % pw:
        raise ValueError(f"frames of shape {tuple(frames.shape)!r} do not tile into {patch!r}")
    x = frames.double().reshape(t // pt, pt, c, h // ph, ph, w // pw, pw)
    return x.permute(0, 3, 5, 1, 4, 6, 2).reshape(-1, pt * ph * pw * c)


def from_patches(patches: torch.Tensor, patch: Patch, shape: tuple[int, ...]) -> torch.Tensor:
    """The inverse of ``to_patches``: (tokens, D) -> (T, C, S, S)."""
    pt, ph, pw = patch
    t, c, h, w = shape
    x = patches.reshape(t // pt, h // ph, w // pw, pt, ph, pw, c).permute(0, 3, 6, 1, 4, 2, 5)
    return x.reshape(t, c, h, w)


def pixel_patches(frames_uint8: torch.Tensor, patch: Patch) -> torch.Tensor:
    """(T, 3, S, S) uint8 -> patches in the models' pixel range [-1, 1]."""
    return to_patches(frames_uint8.double() / 127.5 - 1.0, patch)


def strided_groups(num_frames: int, stride: int, patch_t: int) -> list[list[int]]:
    """Frame indices as the model patches them: each offset's frames at the IDM's stride,
    padded (the last index repeated) to a multiple of ``patch_t``."""
    groups = []
    for offset in range(min(stride, num_frames)):
        idx = list(range(offset, num_frames, stride))
        idx += [idx[-1]] * (-len(idx) % patch_t)
        groups.append(idx)
    return groups


def in_span(episode: EpisodeArrays, span: PatchSpan, stride: int) -> EpisodeArrays:
    """The episode with every frame replaced by the closest one the head can draw."""
    frames = episode.frames.clone()
    for idx in strided_groups(frames.shape[0], stride, span.patch[0]):
        sub = episode.frames[idx]
        drawn = from_patches(span.project(pixel_patches(sub, span.patch)), span.patch, sub.shape)
        # a padded index repeats its frame, drawn alike
        frames[idx] = ((drawn + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return replace(episode, frames=frames)


def pca_span(episodes: list[EpisodeArrays], patch: Patch, rank: int, stride: int) -> PatchSpan:
    """The mean and the top ``rank`` principal directions of the episodes' patches."""
    patches = torch.cat(
        [
            pixel_patches(e.frames[idx], patch)
            for e in episodes
            for idx in strided_groups(e.frames.shape[0], stride, patch[0])
        ]
    )
    mean = patches.mean(0)
    centred = patches - mean
    _, vectors = torch.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    return PatchSpan(patch, mean, vectors[:, -rank:].flip(1).contiguous())


def goal_psnr_db(moved: list[EpisodeArrays], clean: list[EpisodeArrays]) -> float:
    """Peak signal-to-noise ratio of the moved frames against the recorded ones."""
    se = sum(
        float(((m.frames.float() - c.frames.float()) ** 2).sum())
        for m, c in zip(moved, clean, strict=True)
    )
    n = sum(c.frames.numel() for c in clean)
    return float("inf") if se == 0 else round(10 * np.log10(255.0**2 * n / se), 2)


def patch_name(patch: Patch) -> str:
    return "x".join(str(p) for p in patch)


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


def arm_offset(
    episode: EpisodeArrays,
    env: Any,
    records: dict[int, dict[str, Any]],
    stride: int,
    noise_rad: float,
    seed: int,
) -> EpisodeArrays:
    """The goal frames re-rendered from the replayed expert's states with the arm's joints
    moved by N(0, ``noise_rad``) (``collect_corrections.arm_offset_goals``; 0: re-rendered
    as they were, without the dataset's video compression)."""
    rng = np.random.default_rng([seed, episode.episode_index])
    size = episode.frames.shape[-1]
    record = records[episode.episode_index]
    goals = arm_offset_goals(env, record, episode, stride, size, noise_rad, rng)
    frames = episode.frames.clone()
    frames[stride : stride * (goals.shape[0] + 1) : stride] = goals
    return replace(episode, frames=frames)


def perturbations_of(
    cfg: GrainConfig,
    stride: int,
    env: Any,
    records: dict[int, dict[str, Any]],
    image_config: Any,
) -> dict[str, Callable[[EpisodeArrays], EpisodeArrays]]:
    """Every goal-frame perturbation the config asks for, by name (iid_std_0: clean)."""
    perturbations: dict[str, Callable[[EpisodeArrays], EpisodeArrays]] = {
        f"iid_std_{std:g}": partial(iid_grain, std=std, seed=cfg.seed) for std in cfg.noise_std
    }
    if cfg.grainy is not None:
        residuals = grain_residuals(cfg)
        for scale in cfg.transplant_scales:
            perturbations[f"transplant_x{scale:g}"] = partial(
                transplanted_grain, residuals=residuals, scale=scale, seed=cfg.seed
            )
    for blur_px, noise_std in cfg.degrade:
        perturbations[f"blur_{blur_px:g}px_noise_{noise_std:g}"] = partial(
            degraded, blur_px=blur_px, noise_std=noise_std, seed=cfg.seed
        )
    for noise_rad in cfg.arm_offset_rad:
        perturbations[f"arm_offset_{noise_rad:g}rad"] = partial(
            arm_offset, env=env, records=records, stride=stride, noise_rad=noise_rad, seed=cfg.seed
        )
    for path in cfg.span_of:
        span = head_span(path)
        perturbations[f"span_{Path(path).name}_{patch_name(span.patch)}_r{span.rank}"] = partial(
            in_span, span=span, stride=stride
        )
    if cfg.pca_ceilings:
        train = split_of(cfg.idm, cfg.dataset_root, "train")[: cfg.pca_episodes]
        fit_on = load_episodes(cfg.dataset_root, image_config, train)
        for patch, rank in cfg.pca_ceilings:
            span = pca_span(fit_on, patch, rank, stride)
            perturbations[f"pca_{patch_name(patch)}_r{rank}"] = partial(
                in_span, span=span, stride=stride
            )
    return perturbations


def run(cfg: GrainConfig) -> dict[str, Any]:
    require_local_dataset(cfg.dataset_root)
    policy = InverseDynamicsPolicy.from_pretrained(cfg.idm)
    eps = split_of(cfg.idm, cfg.dataset_root, "heldout")[: cfg.max_episodes]
    records = episode_records(cfg.dataset_root)
    episodes = load_episodes(cfg.dataset_root, policy.config, eps)
    stride = policy.config.frame_stride
    fit = None if cfg.fit_to is None else fit_to_regenerated(cfg, stride, episodes)
    env = env_for_dataset(cfg.dataset_root, policy.config.image_size_px)
    levels: dict[str, Any] = {}
    oks: dict[str, list[bool]] = {}
    t0 = time.perf_counter()
    try:
        perturbations = perturbations_of(cfg, stride, env, records, policy.config)
        for key, perturb in perturbations.items():
            perturbed = [perturb(e) for e in episodes]
            levels[key], oks[key] = replay_level(policy, env, records, perturbed, cfg.settle_steps)
            levels[key]["goal_psnr_db"] = goal_psnr_db(perturbed, episodes)
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
        "span_of": [str(p) for p in cfg.span_of],
        "pca_ceilings": [f"{patch_name(p)}:{r}" for p, r in cfg.pca_ceilings],
        "pca_fitted_on_train_episodes": cfg.pca_episodes if cfg.pca_ceilings else 0,
        "degrade": [list(d) for d in cfg.degrade],
        "arm_offset_rad": list(cfg.arm_offset_rad),
        "fit_to": None if cfg.fit_to is None else str(cfg.fit_to),
        "fitted_degradation": fit,
        "episodes": [e.episode_index for e in episodes],
        "wall_s": round(time.perf_counter() - t0, 1),
        "levels": levels,
    }


def parse_numbers(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated numbers, got {text!r}") from None


def parse_pairs(text: str, flag: str, form: str, convert: Callable[[str, str], Any]) -> tuple:
    """Comma-separated ``A:B`` items, each through ``convert`` (a ValueError there, or a
    missing colon, names the item and the ``form`` expected)."""
    out = []
    for item in (v.strip() for v in text.split(",")):
        if not item:
            continue
        try:
            left, right = item.split(":")
            out.append(convert(left, right))
        except ValueError:
            raise ValueError(f"{flag} items are {form}, got {item!r}") from None
    return tuple(out)


def parse_degrade(text: str) -> tuple[tuple[float, float], ...]:
    """ "0.7:0,0.7:10" -> ((0.7, 0.0), (0.7, 10.0))."""
    return parse_pairs(
        text, "--degrade", "BLUR_PX:NOISE_STD (e.g. 0.7:10)", lambda b, n: (float(b), float(n))
    )


def _ceiling(patch_text: str, rank_text: str) -> tuple[Patch, int]:
    sizes = tuple(int(v) for v in patch_text.split("x"))
    if len(sizes) != 3:
        raise ValueError(patch_text)
    return (sizes[0], sizes[1], sizes[2]), int(rank_text)


def parse_ceilings(text: str) -> tuple[tuple[Patch, int], ...]:
    """ "2x8x8:160,2x16x16:320" -> (((2, 8, 8), 160), ((2, 16, 16), 320))."""
    return parse_pairs(text, "--pca_ceilings", "TxHxW:RANK (e.g. 2x8x8:160)", _ceiling)


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
    parser.add_argument("--span_of", default="", help="pixel-space pipelines, comma-separated")
    parser.add_argument("--pca_ceilings", default="", help="TxHxW:RANK,... (e.g. 2x8x8:160)")
    parser.add_argument("--pca_episodes", type=int, default=60)
    parser.add_argument("--degrade", default="", help="BLUR_PX:NOISE_STD,... (e.g. 0.7:10)")
    parser.add_argument("--arm_offset_rad", default="", help="arm offset stds, e.g. 0,0.03")
    parser.add_argument(
        "--fit_to", type=Path, default=None, help="executor-imagined-goals clips to fit"
    )
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
        span_of=tuple(Path(v.strip()) for v in args.span_of.split(",") if v.strip()),
        pca_ceilings=parse_ceilings(args.pca_ceilings),
        pca_episodes=args.pca_episodes,
        degrade=parse_degrade(args.degrade),
        arm_offset_rad=parse_numbers(args.arm_offset_rad, "--arm_offset_rad"),
        fit_to=args.fit_to,
    )
    torch.set_num_threads(1)
    result = run(cfg)
    write_json_atomic(cfg.output, result)
    summary = {
        k: (v["goal_grain"], v["goal_psnr_db"], v["success"], v.get("minus_clean"))
        for k, v in result["levels"].items()
    }
    print(
        json.dumps(
            {"output": str(cfg.output), "levels": summary, "fit": result["fitted_degradation"]}
        )
    )


if __name__ == "__main__":
    sys.exit(main())
