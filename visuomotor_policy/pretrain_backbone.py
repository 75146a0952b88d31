"""``executor-pretrain-backbone``: pretrain ACT's ResNet-18 in simulation, no download.

ACT trained from scratch on 30 demos fits its own scenes and fails on new layouts
(``checkpoints/policy_sim/README.md``): its vision never learns where the objects are. A
pretrained backbone is the usual cure, and nothing may be downloaded here, so this module
makes one from the simulator's privileged state. The scripted expert runs in random scenes
(seeds that no evaluation draws), and every ``frame_stride``-th frame is labelled with:

- each cube colour: whether it is in the scene, and its position (x, y, z);
- the bowl's and the mat's positions (x, y);
- the gripper's position (the middle of the two jaw pads) and the six joint positions.

A torchvision ResNet-18 with batch norm (ACT's own architecture) regresses these
(standardised; cube positions only where the cube is present, presence by a logistic
loss). The backbone without its head is written to ``backbone.safetensors``, in the layout
of ACT's ``model.backbone`` (batch norm's running statistics become ACT's frozen batch
norm); ``backbone_config.json`` gives the image size, the per-channel image statistics the
backbone was trained with (the policy normalises its images with them) and the errors on
held-out episodes in metres and radians. ``executor-train-policy --backbone_weights DIR``
starts ACT from it.

    executor-pretrain-backbone --preset debug
    executor-pretrain-backbone --preset sim --output_dir outputs/policy_sim/backbone
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from executor_core.atomic_io import atomic_path, write_json_atomic
from executor_core.config_cli import (
    cli_main,
    config_to_dict,
    configure_cli_logging,
    parse_config,
    save_config_json,
)
from executor_core.train_state import latest_checkpoint, load_training_state, save_checkpoint
from executor_sim.env import EnvConfig, TabletopEnv, make_env
from executor_sim.expert import expert_policy
from executor_sim.scene import CUBE_COLORS

logger = logging.getLogger(__name__)

BACKBONE_FILE = "backbone.safetensors"
HEAD_FILE = "head.safetensors"  # the linear head: the labels from the pooled features
BACKBONE_CONFIG = "backbone_config.json"
FRAMES_FILE = "frames.npz"
ARCH = "resnet18"
# The first seed of the pretraining scenes: no evaluation or training set draws from here
# (expert demos 0-479, neural trajectories 200,000+, evaluations 1,400,000-1,540,000+).
PRETRAIN_SEED = 3_000_000
GRIPPER_PADS = ("fixed_jaw_pad", "moving_jaw_pad")


def label_names() -> list[str]:
    names = []
    for c in CUBE_COLORS:
        names += [f"{c}_present", f"{c}_x_m", f"{c}_y_m", f"{c}_z_m"]
    names += ["bowl_x_m", "bowl_y_m", "mat_x_m", "mat_y_m", "gripper_x_m", "gripper_y_m"]
    names += ["gripper_z_m"] + [f"joint_{i}_rad" for i in range(6)]
    return names


PRESENT = np.array([n.endswith("_present") for n in label_names()])


@dataclass
class PretrainBackboneConfig:
    output_dir: Path = Path("outputs/policy_sim/backbone")
    num_episodes: int = 2000  # expert episodes in random scenes
    val_episodes: int = 100  # of those, the last ones: held out for the reported errors
    frames_per_episode: int = 64  # steps the expert runs (it holds still when done)
    frame_stride: int = 4  # label every frame_stride-th frame
    image_px: int = 64  # the policy's image size
    seed: int = PRETRAIN_SEED
    steps: int = 2500
    batch_size: int = 64
    learning_rate: float = 1e-3  # AdamW, cosine decay to 0
    weight_decay: float = 1e-4
    save_every: int = 500
    log_every: int = 100
    num_threads: int = 1

    def __post_init__(self) -> None:
        positive = ("num_episodes", "frames_per_episode", "frame_stride", "steps", "batch_size")
        for name in (*positive, "save_every", "log_every", "num_threads"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.val_episodes < self.num_episodes:
            raise ValueError(
                f"val_episodes must be in (0, num_episodes={self.num_episodes}), got "
                f"{self.val_episodes!r}"
            )
        if not 16 <= self.image_px <= 256:
            raise ValueError(f"image_px must be in [16, 256], got {self.image_px!r}")
        finite = math.isfinite(self.learning_rate) and math.isfinite(self.weight_decay)
        if not finite or not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError(
                f"need learning_rate > 0 and weight_decay >= 0, got {self.learning_rate!r}, "
                f"{self.weight_decay!r}"
            )


PRESETS: dict[str, PretrainBackboneConfig] = {
    "debug": PretrainBackboneConfig(
        output_dir=Path("outputs/backbone_debug"),
        num_episodes=3,
        val_episodes=1,
        frames_per_episode=8,
        steps=2,
        batch_size=4,
        save_every=1,
        log_every=1,
    ),
    "sim": PretrainBackboneConfig(),
}


# ------------------------------------------------------------------------- the frames
def scene_labels(env: TabletopEnv) -> np.ndarray:
    """The privileged labels of the current frame, in :func:`label_names` order."""
    values: list[float] = []
    for c in CUBE_COLORS:
        pos = env.object_position(c)
        present = pos[2] > -0.1  # unused cubes wait under the table
        values += [float(present), *(pos if present else np.zeros(3))]
    values += [*env.object_position("bowl")[:2], *env.object_position("mat")[:2]]
    pads = [env.data.geom_xpos[env.model.geom(g).id] for g in GRIPPER_PADS]
    values += [*np.mean(pads, axis=0), *env.joint_positions_rad()]
    return np.asarray(values, np.float32)


def render_frames(cfg: PretrainBackboneConfig, progress: bool = True) -> dict[str, np.ndarray]:
    """Run the expert in ``num_episodes`` random scenes: images (N, H, W, 3) uint8, labels
    (N, D) float32 and the episode of each frame (N,)."""
    env = make_env(EnvConfig(image_size_px=cfg.image_px))
    images, labels, episodes = [], [], []
    try:
        for episode in tqdm(range(cfg.num_episodes), "frames", disable=not progress):
            obs = env.reset(cfg.seed + episode)
            policy = expert_policy(env)
            for t in range(cfg.frames_per_episode):
                if t % cfg.frame_stride == 0:
                    images.append(obs["image"])
                    labels.append(scene_labels(env))
                    episodes.append(episode)
                obs = env.step(policy(env))
    finally:
        env.close()
    return {
        "images": np.stack(images),
        "labels": np.stack(labels),
        "episodes": np.asarray(episodes, np.int64),
    }


def load_or_render_frames(cfg: PretrainBackboneConfig, out: Path) -> dict[str, np.ndarray]:
    """The frames of this config, rendered once and cached in ``out/frames.npz``."""
    path = out / FRAMES_FILE
    key = json.dumps(
        {k: getattr(cfg, k) for k in ("num_episodes", "frames_per_episode", "frame_stride")}
        | {"image_px": cfg.image_px, "seed": cfg.seed, "labels": label_names()}
    )
    if path.is_file():
        with np.load(path) as cached:
            if str(cached["key"]) == key:
                return {k: cached[k] for k in ("images", "labels", "episodes")}
        logger.info("%s was rendered for another config: rendering again", path)
    frames = render_frames(cfg)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, key=np.array(key), **frames)
    return frames


# ------------------------------------------------------------------------- the model
def make_network(num_outputs: int) -> torch.nn.Module:
    """ACT's ResNet-18 (batch norm while pretraining) with a linear head."""
    return getattr(torchvision.models, ARCH)(weights=None, num_classes=num_outputs)


def backbone_state_dict(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights ACT's ``model.backbone`` holds: everything before the pooling and the
    head, batch norm as weight, bias and running statistics."""
    return {
        k: v.detach().cpu().contiguous()
        for k, v in network.state_dict().items()
        if not k.startswith("fc.") and not k.endswith("num_batches_tracked")
    }


class LabelLoss:
    """Logistic loss on presence, squared error on the standardised positions (a cube's
    only where it is present)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean, std
        self.present = torch.from_numpy(PRESENT)
        # each cube's three position columns follow its presence column
        owner = np.full(len(PRESENT), -1)
        for i in np.flatnonzero(PRESENT):
            owner[i + 1 : i + 4] = i
        self.owner = torch.from_numpy(owner)

    def __call__(self, pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = torch.ones_like(labels)
        owned = self.owner >= 0
        weight[:, owned] = labels[:, self.owner[owned]]
        target = (labels - self.mean) / self.std
        squared = ((pred - target) ** 2 * weight)[:, ~self.present].sum() / weight[
            :, ~self.present
        ].sum()
        logistic = torch.nn.functional.binary_cross_entropy_with_logits(
            pred[:, self.present], labels[:, self.present]
        )
        return squared + logistic


def normalise_images(
    images_u8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float, per-channel standardised."""
    x = images_u8.permute(0, 3, 1, 2).float() / 255.0
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def label_stats(labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of each label over the frames where it is defined (a cube's position
    where the cube is present); presence columns are left as they are."""
    mean = np.zeros(labels.shape[1], np.float32)
    std = np.ones(labels.shape[1], np.float32)
    present_rows = {i: labels[:, i] > 0.5 for i in np.flatnonzero(PRESENT)}
    for j in np.flatnonzero(~PRESENT):
        owner = next((i for i in present_rows if i < j <= i + 3), None)
        rows = labels[present_rows[owner], j] if owner is not None else labels[:, j]
        if len(rows):  # a colour absent from every frame keeps mean 0, std 1
            mean[j], std[j] = rows.mean(), max(rows.std(), 1e-3)
    return torch.from_numpy(mean), torch.from_numpy(std)


def validation_errors(
    network: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    stats: dict[str, torch.Tensor],
) -> dict[str, float]:
    """Held-out errors in physical units: the mean Euclidean error of the cubes' (where
    present), the bowl's, the mat's and the gripper's positions in metres, the joints' RMS
    error in radians and the presence accuracy."""
    network.eval()
    with torch.no_grad():
        pred = torch.cat(
            [
                network(
                    normalise_images(images[i : i + 256], stats["image_mean"], stats["image_std"])
                )
                for i in range(0, len(images), 256)
            ]
        )
    network.train()
    values = pred * stats["label_std"] + stats["label_mean"]
    names = label_names()
    col = {n: i for i, n in enumerate(names)}

    def distance(prefix: str, axes: str, rows: torch.Tensor | None = None) -> float:
        idx = [col[f"{prefix}_{a}_m"] for a in axes]
        err = (values[:, idx] - labels[:, idx]).norm(dim=1)
        return float(err[rows].mean() if rows is not None else err.mean())

    cube_errors = []
    for c in CUBE_COLORS:
        rows = labels[:, col[f"{c}_present"]] > 0.5
        if rows.any():
            cube_errors.append(distance(c, "xyz", rows) * float(rows.sum()))
    n_cubes = float((labels[:, PRESENT] > 0.5).sum())
    joints = [col[f"joint_{i}_rad"] for i in range(6)]
    present_ok = (pred[:, PRESENT] > 0) == (labels[:, PRESENT] > 0.5)
    return {
        "cube_xyz_error_m": sum(cube_errors) / max(n_cubes, 1.0),
        "bowl_xy_error_m": distance("bowl", "xy"),
        "mat_xy_error_m": distance("mat", "xy"),
        "gripper_xyz_error_m": distance("gripper", "xyz"),
        "joint_rms_error_rad": float((values[:, joints] - labels[:, joints]).pow(2).mean().sqrt()),
        "cube_presence_accuracy": float(present_ok.float().mean()),
        "frames": len(images),
    }


# ------------------------------------------------------------------------- training
def pretrain(cfg: PretrainBackboneConfig) -> dict[str, Any]:
    torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.output_dir)
    save_config_json(cfg, out / "train_config.json")
    frames = load_or_render_frames(cfg, out)
    is_val = frames["episodes"] >= cfg.num_episodes - cfg.val_episodes
    images = torch.from_numpy(frames["images"])
    labels = torch.from_numpy(frames["labels"])
    train_idx = torch.from_numpy(np.flatnonzero(~is_val))
    pixels = images[train_idx].float().div(255.0)
    stats = {
        "image_mean": pixels.mean(dim=(0, 1, 2)),
        "image_std": pixels.std(dim=(0, 1, 2)).clamp_min(1e-3),
    }
    del pixels
    stats["label_mean"], stats["label_std"] = label_stats(frames["labels"][~is_val])
    loss_fn = LabelLoss(stats["label_mean"], stats["label_std"])
    torch.manual_seed(cfg.seed)
    network = make_network(len(label_names()))
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    step = 0
    resume = latest_checkpoint(out)
    if resume is not None:
        network.load_state_dict(load_file(str(resume / "model.safetensors")))
        step = int(load_training_state(resume, optimizer, cfg)["step"])
        logger.info("resuming from %s (step %d)", resume, step)
    logger.info(
        "pretraining %s on %d frames (%d held out), %d steps of %d",
        ARCH,
        len(train_idx),
        int(is_val.sum()),
        cfg.steps,
        cfg.batch_size,
    )
    network.train()
    while step < cfg.steps:
        # a function of (seed, step): a resumed run draws the batches of an uninterrupted one
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        batch = train_idx[torch.randint(len(train_idx), (cfg.batch_size,), generator=gen)]
        lr = cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = normalise_images(images[batch], stats["image_mean"], stats["image_std"])
        loss = loss_fn(network(x), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % cfg.log_every == 0:
            logger.info("step %d: loss %.4f lr %.1e", step, loss.item(), lr)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(
                out,
                step,
                lambda folder: save_file(
                    {k: v.contiguous() for k, v in network.state_dict().items()},
                    str(folder / "model.safetensors"),
                ),
                optimizer,
                {},
                cfg,
                keep=2,
            )
    val = validation_errors(network, images[is_val], labels[is_val], stats)
    summary = {
        "arch": ARCH,
        "image_px": cfg.image_px,
        "image_mean": stats["image_mean"].tolist(),
        "image_std": stats["image_std"].tolist(),
        "label_names": label_names(),
        "label_mean": stats["label_mean"].tolist(),
        "label_std": stats["label_std"].tolist(),
        "steps": step,
        "train_frames": len(train_idx),
        "validation": val,
        "config": config_to_dict(cfg),
    }
    with atomic_path(out / BACKBONE_FILE) as tmp:
        save_file(backbone_state_dict(network), str(tmp))
    head = {k: v.detach().contiguous() for k, v in network.fc.state_dict().items()}
    with atomic_path(out / HEAD_FILE) as tmp:
        save_file(head, str(tmp))
    write_json_atomic(out / BACKBONE_CONFIG, summary)
    return summary


# ------------------------------------------------------------------------- loading
def load_network(folder: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The whole pretrained network (backbone and head, in eval mode) and its config."""
    weights, config = read_backbone(folder)
    head = load_file(str(Path(folder) / HEAD_FILE))
    network = make_network(len(config["label_names"]))
    network.load_state_dict({**weights, **{f"fc.{k}": v for k, v in head.items()}}, strict=False)
    return network.eval(), config


def read_backbone(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and config of an ``executor-pretrain-backbone`` output folder."""
    folder = Path(folder)
    weights, config = folder / BACKBONE_FILE, folder / BACKBONE_CONFIG
    if not weights.is_file() or not config.is_file():
        raise FileNotFoundError(
            f"{folder}: no {BACKBONE_FILE} and {BACKBONE_CONFIG} (run executor-pretrain-backbone)"
        )
    return load_file(str(weights)), json.loads(config.read_text())


@cli_main("executor-pretrain-backbone")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(PretrainBackboneConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    summary = pretrain(cfg)
    print(json.dumps({k: summary[k] for k in ("steps", "train_frames", "validation")}, indent=2))
    print(f"backbone: {(Path(cfg.output_dir) / BACKBONE_FILE).resolve()}")


if __name__ == "__main__":
    sys.exit(main())
