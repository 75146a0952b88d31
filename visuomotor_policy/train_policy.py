"""``executor-train-policy``: train a LeRobot ACT (or diffusion) policy on expert demos,
optionally mixed with neural trajectories (``executor-neural-trajectories``).

**Policy: ACT** (``lerobot.policies.act``), built from scratch: ResNet-18 with
``pretrained_backbone_weights=None`` (nothing is downloaded), a narrow transformer, no VAE.
Why ACT and not diffusion policy: one forward pass per chunk at inference (diffusion needs
tens of denoising passes per chunk, too slow for a closed-loop evaluation of hundreds of
episodes on two CPU cores), a plain L1 loss that learns usefully in a few thousand CPU
steps at 64 px, and action chunking that matches the goal runner's chunked policy mode.
``--policy_type diffusion`` trains LeRobot's diffusion policy instead (spatial-softmax
keypoints over the same from-scratch ResNet-18, random crops, a small 1-D U-Net, 10 DDIM
steps per chunk at inference; it always reads the joint state), for a comparison at the
same steps and data. Neither reads text; the task prompt enters as
``observation.environment_state`` through
:class:`visuomotor_policy.prompt_features.PromptVectorStep`, a processor step saved with
the checkpoint (``prompt_conditioning``). The joint state is an input too unless
``use_state`` is False (image and prompt only). ``backbone_weights`` starts ACT's ResNet-18
from an ``executor-pretrain-backbone`` folder (pretrained in simulation on the scene's
state; :mod:`visuomotor_policy.pretrain_backbone`), frozen unless ``freeze_backbone`` is
False, and normalises the images with the statistics it was pretrained with.

**Trainer: LeRobot's own parts.** ``lerobot-train`` trains on one dataset; a weighted
mixture of two local LeRobotDatasets is not one of its options, so this module assembles
the run from LeRobot's pieces: the datasets (``LeRobotDataset`` with ``delta_timestamps``
for the action chunk), the policy (``make_policy_config`` / ``get_policy_class``), the
processors (``make_pre_post_processors``), the optimizer (the policy config's own preset)
and the training step itself (``lerobot.scripts.lerobot_train.update_policy``: forward,
backward, grad clipping, optimizer step). The checkpoint is LeRobot's ``pretrained_model/``
(``save_pretrained`` of the policy and both processors), which
``visuomotor_policy.LeRobotChunkPolicy.from_pretrained`` loads.

**Mixture.** The expert set is the first ``demos_per_family`` successful episodes of each
task family in ``expert_root``, leaving out ``executor_sim.NOVEL_COMPOSITIONS``
(``hold_out_novel``: those behaviours are only in the neural trajectories). With
``neural_root`` each batch draws ``neural_ratio`` of its samples from the neural
trajectories (a weighted sampler over the two datasets; ``neural_filter`` keeps only the
judged or executed successes). The same ``steps`` and ``batch_size`` for both conditions
give them the same compute.

Resumable (``executor_core.train_state``: ``checkpoints/step_*`` with the
``pretrained_model/``, the optimizer moments and the step); a rerun of the same command
continues from the newest checkpoint. The final model is ``<output_dir>/pretrained_model``
with the resolved config beside it (``train_config.json``). ``device`` trains on a GPU
where one is lent (``cuda``); the checkpoint is the same and loads on the CPU.

    executor-train-policy --preset debug
    executor-train-policy --expert_root outputs/policy_sim/expert60 \
        --neural_root outputs/policy_sim/neural/dataset --output_dir outputs/policy_sim/mixed
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from accelerate import Accelerator
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.factory import get_policy_class, make_policy_config, make_pre_post_processors
from lerobot.scripts.lerobot_train import update_policy
from lerobot.utils.logging_utils import AverageMeter, MetricsTracker
from safetensors.torch import load_file

from executor_core.atomic_io import atomic_path, write_json_atomic
from executor_core.augment import random_shift, resize_square
from executor_core.config_cli import (
    cli_main,
    config_to_dict,
    configure_cli_logging,
    parse_config,
    require_local_dataset,
    save_config_json,
)
from executor_core.train_state import latest_checkpoint, load_training_state, save_checkpoint
from executor_sim.tasks import is_novel_composition
from visuomotor_policy.configuration_policy import SIM_IMAGE_KEY, STATE_KEY
from visuomotor_policy.grasp_space import SPACES, GraspSpace, write_action_space
from visuomotor_policy.object_features import FRAMES, ObjectPositionStep
from visuomotor_policy.pretrain_backbone import read_backbone
from visuomotor_policy.prompt_features import PROMPT_FEATURE_KEY, PromptVectorStep, prompt_dim

logger = logging.getLogger(__name__)

PRETRAINED_DIR = "pretrained_model"
FAMILIES: tuple[str, ...] = ("pick_place", "push", "stack")


@dataclass
class TrainPolicyConfig:
    output_dir: Path = Path("outputs/policy_sim/expert_only")
    expert_root: Path = Path("outputs/policy_sim/expert60")
    demos_per_family: int = 10  # N expert demos per task family
    hold_out_novel: bool = True  # no NOVEL_COMPOSITIONS among the expert demos
    successful_only: bool = True  # expert episodes whose task predicate held
    # "until_done": train on an expert episode's frames before the expert's done frame
    # only; "all": every recorded frame. The generator records a fixed length, so about 30 %
    # of the frames are the finished expert holding still near home, which makes the start
    # pose a fixed point of the policy (seen on validation: it never leaves home).
    expert_frames: Literal["all", "until_done"] = "until_done"
    neural_root: Path | None = None  # an executor-neural-trajectories dataset
    neural_ratio: float = 0.5  # share of each batch drawn from the neural trajectories
    neural_filter: Literal["none", "judge", "executed"] = "none"
    steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 1e-4  # backbone too: it starts from scratch
    weight_decay: float = 1e-4
    grad_clip_norm: float = 10.0
    # LeRobot's policy class: "act" (the recipe of the figures), or "diffusion" (LeRobot's
    # diffusion policy: ResNet-18 with spatial-softmax keypoints and random crops, a 1-D
    # conditional U-Net, DDIM at inference; it always reads the joint state)
    policy_type: Literal["act", "diffusion"] = "act"
    chunk_size: int = 20  # actions predicted per inference (2 s at 10 Hz); diffusion's horizon
    n_action_steps: int = 8  # executed per observation by the goal runner
    dim_model: int = 256
    n_heads: int = 4
    dim_feedforward: int = 1024
    n_encoder_layers: int = 2
    n_decoder_layers: int = 1
    dropout: float = 0.1
    # diffusion only: the U-Net's widths (LeRobot's default (512, 1024, 2048) is ~250 M
    # parameters, too slow for two cores), DDIM steps at inference, the random crop's side
    # in training (a centre crop at inference; 0: no crop)
    diffusion_down_dims: tuple[int, ...] = (128, 256, 512)
    diffusion_inference_steps: int = 10
    diffusion_crop_px: int = 56
    # random shift of every training image by up to this many pixels per axis
    # (executor_core.augment.random_shift, DrQ's augmentation); 0: off
    image_shift_px: int = 0
    # the side the policy sees, in pixels: every training image is resized to it (bilinear,
    # as executor_core.frames.center_crop_resize resizes a camera frame at run time) and the
    # checkpoint declares it. At 64 px ResNet-18's stride of 32 leaves 2x2 image tokens; 128
    # px gives 4x4 from the same pixels. 0: the dataset's own size
    policy_image_px: int = 0
    # an executor-pretrain-backbone folder: ACT's ResNet-18 starts from it (pretrained in
    # simulation on object and gripper positions; nothing is downloaded) and the images are
    # normalised with the statistics it was trained with. None: from scratch
    backbone_weights: Path | None = None
    # what the policy predicts: "joints" (the datasets' joint targets) or "grasp" (the
    # grasp point, finger pitch, wrist roll and gripper: visuomotor_policy.grasp_space; the
    # checkpoint declares it and the goal runner's adapter solves the joints at run time)
    # "grasp_relative": the same with x, y, z measured from the grasp point of the
    # observation's measured joints (the neural trajectories' state: the previous target)
    action_space: Literal["joints", "grasp", "grasp_relative"] = "joints"
    freeze_backbone: bool = True  # with backbone_weights: keep it fixed (False: fine-tune)
    # with backbone_weights: append the prompt's objects' positions, as the pretrained
    # network estimates them from the frame, to the prompt vector
    # (visuomotor_policy.object_features.ObjectPositionStep)
    object_positions: bool = False
    # the camera image as a policy input; False (with object_positions): the image feeds
    # only the object-position step, which then also gives the gripper's estimated position,
    # so the policy reads the prompt and the estimated positions (an object-centric policy)
    use_image: bool = True
    # with object_positions and use_image false: "world" (the estimated positions) or
    # "gripper" (the named objects' offsets from the gripper, its height and jaw angle:
    # visuomotor_policy.object_features.to_gripper_frame)
    # "grasp_point": the same offsets from the grasp point of the measured joints, its
    # height and the measured jaw (the joints feed the step only, never ACT itself)
    object_frame: Literal["world", "gripper", "grasp_point"] = "world"
    prompt_conditioning: bool = True  # the prompt as observation.environment_state
    # the joint state as an input; False: image and prompt only (the state is then no
    # shortcut to the demo's phase, and the two sources' states, measured joints and the
    # neural trajectories' previous pseudo-action, are not mixed)
    use_state: bool = True
    save_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    num_threads: int = 1
    num_workers: int = 0  # DataLoader workers
    seed: int = 0
    # "cpu", or "cuda" / "cuda:N" where a GPU is lent; the checkpoint loads on either
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("demos_per_family", "steps", "batch_size", "chunk_size", "n_action_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.policy_type not in ("act", "diffusion"):
            raise ValueError(f"policy_type must be act/diffusion, got {self.policy_type!r}")
        if self.policy_type == "diffusion":
            self._check_diffusion()
        if self.action_space not in SPACES:
            raise ValueError(f"action_space must be one of {SPACES}, got {self.action_space!r}")
        if self.object_positions and (
            self.backbone_weights is None or not self.prompt_conditioning
        ):
            raise ValueError(
                "object_positions needs backbone_weights (the network that estimates them) and "
                f"prompt_conditioning; got {self.backbone_weights!r}, {self.prompt_conditioning!r}"
            )
        if not self.use_image and not (self.object_positions and self.policy_type == "act"):
            raise ValueError(
                "use_image false needs object_positions (the positions are then all the policy "
                f"reads) and policy_type act; got {self.object_positions!r}, {self.policy_type!r}"
            )
        if self.object_frame not in FRAMES:
            raise ValueError(f"object_frame must be one of {FRAMES}, got {self.object_frame!r}")
        if self.object_frame != "world" and self.use_image:
            raise ValueError(
                f"object_frame {self.object_frame} is for the object-centric policy: it needs "
                f"use_image false; got use_image {self.use_image!r}"
            )
        if self.backbone_weights is not None and self.policy_type != "act":
            raise ValueError(
                f"backbone_weights {str(self.backbone_weights)!r} is ACT's ResNet-18; "
                f"policy_type {self.policy_type!r} has its own backbone"
            )
        if self.n_action_steps > self.chunk_size:
            raise ValueError(
                f"n_action_steps ({self.n_action_steps!r}) must be <= chunk_size "
                f"({self.chunk_size!r})"
            )
        if self.image_shift_px < 0:
            raise ValueError(f"image_shift_px must be >= 0, got {self.image_shift_px!r}")
        if self.policy_image_px < 0:
            raise ValueError(f"policy_image_px must be >= 0, got {self.policy_image_px!r}")
        if not 0.0 <= self.neural_ratio < 1.0:
            raise ValueError(f"neural_ratio must be in [0, 1), got {self.neural_ratio!r}")
        if self.expert_frames not in ("all", "until_done"):
            raise ValueError(f"expert_frames must be all/until_done, got {self.expert_frames!r}")
        if self.neural_filter not in ("none", "judge", "executed"):
            raise ValueError(
                f"neural_filter must be none/judge/executed, got {self.neural_filter!r}"
            )
        if self.device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", self.device):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        for name in ("learning_rate", "weight_decay", "grad_clip_norm", "neural_ratio", "dropout"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.grad_clip_norm <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"need weight_decay >= 0, grad_clip_norm > 0, dropout in [0, 1); got "
                f"{self.weight_decay!r}, {self.grad_clip_norm!r}, {self.dropout!r}"
            )
        if not self.learning_rate > 0 or self.save_every <= 0 or self.num_threads <= 0:
            raise ValueError(
                f"need learning_rate > 0, save_every > 0, num_threads > 0; got "
                f"{self.learning_rate!r}, {self.save_every!r}, {self.num_threads!r}"
            )

    def _check_diffusion(self) -> None:
        if not self.use_state:
            raise ValueError("policy_type diffusion reads the joint state: use_state must be true")
        levels = len(self.diffusion_down_dims)
        if levels == 0 or any(d <= 0 for d in self.diffusion_down_dims):
            raise ValueError(
                f"diffusion_down_dims must be positive widths, got {self.diffusion_down_dims!r}"
            )
        if self.chunk_size % 2**levels:
            raise ValueError(
                f"chunk_size {self.chunk_size!r} must be a multiple of {2**levels} for "
                f"{levels} U-Net levels (LeRobot's diffusion config requires it)"
            )
        if self.diffusion_inference_steps <= 0 or self.diffusion_crop_px < 0:
            raise ValueError(
                f"need diffusion_inference_steps > 0 and diffusion_crop_px >= 0, got "
                f"{self.diffusion_inference_steps!r}, {self.diffusion_crop_px!r}"
            )


PRESETS: dict[str, TrainPolicyConfig] = {
    "debug": TrainPolicyConfig(
        output_dir=Path("outputs/policy_debug"),
        expert_root=Path("outputs/sim_debug"),
        demos_per_family=1,
        hold_out_novel=False,  # the debug dataset's 3 short episodes
        successful_only=False,
        steps=2,
        batch_size=2,
        chunk_size=4,
        n_action_steps=2,
        dim_model=16,
        n_heads=2,
        dim_feedforward=32,
        n_encoder_layers=1,
        image_shift_px=2,
        save_every=1,
        log_every=1,
    ),
    "sim": TrainPolicyConfig(),
}


# ------------------------------------------------------------------------- the data
def read_episode_records(root: Path) -> list[dict[str, Any]]:
    path = Path(root) / "meta" / "executor_episodes.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a dataset written by this project")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _novel(record: dict[str, Any]) -> bool:
    return is_novel_composition(record["task_family"], record["object"], record.get("target") or "")


def select_expert_episodes(cfg: TrainPolicyConfig) -> list[int]:
    """The first ``demos_per_family`` successful episodes of each family (held-out
    compositions left out with ``hold_out_novel``)."""
    chosen: dict[str, list[int]] = {f: [] for f in FAMILIES}
    for r in read_episode_records(cfg.expert_root):
        family = r["task_family"]
        failed = cfg.successful_only and not r.get("success", False)
        if failed or (cfg.hold_out_novel and _novel(r)):
            continue
        if len(chosen[family]) < cfg.demos_per_family:
            chosen[family].append(int(r["episode_index"]))
    found = {f: len(v) for f, v in chosen.items()}
    present = [f for f, n in found.items() if n]
    if not present:
        raise ValueError(f"{cfg.expert_root}: no usable expert episodes")
    short = {f: n for f, n in found.items() if 0 < n < cfg.demos_per_family}
    if short:
        logger.warning("fewer than %d demos for %s", cfg.demos_per_family, short)
    return sorted(i for f in present for i in chosen[f])


def select_neural_episodes(cfg: TrainPolicyConfig) -> list[int]:
    assert cfg.neural_root is not None
    keep = []
    for r in read_episode_records(cfg.neural_root):
        if cfg.neural_filter == "judge" and not r.get("judge_success"):
            continue
        if cfg.neural_filter == "executed" and not r.get("executed_success"):
            continue
        keep.append(int(r["episode_index"]))
    if not keep:
        raise ValueError(
            f"{cfg.neural_root}: no episode passes neural_filter={cfg.neural_filter!r}"
        )
    return keep


def open_dataset(root: Path, episodes: list[int], chunk_size: int) -> Any:
    root = require_local_dataset(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    fps = info["fps"]
    return LeRobotDataset(
        f"local/{root.name}",
        root=root,
        episodes=episodes,
        delta_timestamps={"action": [i / fps for i in range(chunk_size)]},
    )


def feature_stats(
    datasets: list[Any],
    masks: list[np.ndarray],
    grasp: GraspSpace | None = None,
    relative_chunk: int = 0,
) -> dict[str, dict[str, torch.Tensor]]:
    """Mean/std of state and action over the frames actually trained on (the selected
    episodes of every dataset, the frames ``masks`` keeps), image stats from the datasets'
    metadata. With ``grasp`` the action's are of its grasp-space targets; with
    ``relative_chunk`` > 0 too, of every target of a chunk that long measured from its
    observation's grasp point (``grasp_relative``, :func:`relative_chunk_rows`)."""
    stats: dict[str, dict[str, torch.Tensor]] = {}
    for key in (STATE_KEY, "action"):
        if key == "action" and grasp is not None and relative_chunk:
            rows = np.concatenate(
                [
                    relative_chunk_rows(ds, mask, grasp, relative_chunk)
                    for ds, mask in zip(datasets, masks, strict=True)
                ]
            )
        else:
            rows = np.concatenate(
                [_column(ds, key)[mask] for ds, mask in zip(datasets, masks, strict=True)]
            )
        if key == "action" and grasp is not None and not relative_chunk:
            rows = grasp.to_grasp(rows)
        stats[key] = {
            "mean": torch.from_numpy(rows.mean(0)),
            "std": torch.from_numpy(np.maximum(rows.std(0), 1e-3)),
            "min": torch.from_numpy(rows.min(0)),  # diffusion's min-max scaling
            "max": torch.from_numpy(np.maximum(rows.max(0), rows.min(0) + 1e-3)),
        }
    image = datasets[0].meta.stats[SIM_IMAGE_KEY]
    stats[SIM_IMAGE_KEY] = {k: torch.as_tensor(np.asarray(image[k])) for k in ("mean", "std")}
    return stats


def _column(dataset: Any, key: str) -> np.ndarray:
    return np.stack([np.asarray(v, np.float32) for v in dataset.hf_dataset[key]])


def relative_chunk_rows(
    dataset: Any, mask: np.ndarray, grasp: GraspSpace, chunk: int
) -> np.ndarray:
    """(kept frames x chunk, 6): the grasp-space targets of each kept frame's action chunk
    (held at its episode's last frame, as LeRobot pads it) measured from that frame's grasp
    point, as the trainer feeds them in ``grasp_relative``."""
    targets = grasp.to_grasp(_column(dataset, "action"))
    starts = grasp.points(_column(dataset, STATE_KEY)).astype(np.float32)
    episodes = np.asarray(dataset.hf_dataset["episode_index"])
    last = np.empty(len(episodes), np.int64)
    for e in np.unique(episodes):
        where = np.flatnonzero(episodes == e)
        last[where] = where.max()
    kept = np.flatnonzero(mask)
    ahead = np.minimum(kept[:, None] + np.arange(chunk)[None, :], last[kept][:, None])
    rows = targets[ahead].copy()  # (K, chunk, 6)
    rows[..., :3] -= starts[kept][:, None, :]
    return rows.reshape(-1, 6)


def expert_frame_mask(dataset: Any, cfg: TrainPolicyConfig) -> np.ndarray:
    """(N,) bool over ``dataset``'s samples: the frames trained on (``expert_frames``)."""
    episodes = np.asarray(dataset.hf_dataset["episode_index"])
    if cfg.expert_frames == "all":
        return np.ones(len(episodes), bool)
    frames = np.asarray(dataset.hf_dataset["frame_index"])
    done = {
        int(r["episode_index"]): int(r.get("expert_done_frame") or 0)
        for r in read_episode_records(cfg.expert_root)
    }
    # an episode without a done frame (the expert never finished) keeps every frame
    limit = np.array([done.get(int(e), 0) or np.iinfo(np.int64).max for e in episodes])
    return frames < limit


def mixture_sampler(
    sizes: list[int],
    shares: list[float],
    num_samples: int,
    seed: int,
    masks: list[np.ndarray] | None = None,
) -> torch.utils.data.WeightedRandomSampler:
    """Sample dataset ``i`` with probability ``shares[i]``, uniform over its samples (those
    ``masks[i]`` keeps, when given)."""
    if masks is None:
        masks = [np.ones(n, bool) for n in sizes]
    parts = []
    for n, share, mask in zip(sizes, shares, masks, strict=True):
        if mask.shape != (n,) or not mask.any():
            raise ValueError(f"a dataset of {n} samples needs a mask of that many, some kept")
        parts.append(torch.from_numpy(mask.astype(np.float64) * share / mask.sum()))
    weights = torch.cat(parts)
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.WeightedRandomSampler(weights, num_samples, True, generator=gen)


# ------------------------------------------------------------------------- the policy
def make_policy_and_processors(cfg: TrainPolicyConfig, stats: dict, image_px: int) -> tuple:

    inputs = {}
    if cfg.use_image:
        inputs[SIM_IMAGE_KEY] = PolicyFeature(FeatureType.VISUAL, (3, image_px, image_px))
    if cfg.use_state:
        inputs[STATE_KEY] = PolicyFeature(FeatureType.STATE, (6,))
    objects = None
    if cfg.object_positions:
        assert cfg.backbone_weights is not None  # the config checks it
        objects = ObjectPositionStep.from_backbone(
            cfg.backbone_weights, not cfg.use_image, cfg.object_frame
        )
    if cfg.prompt_conditioning:
        extra = objects.dim if objects is not None else 0
        inputs[PROMPT_FEATURE_KEY] = PolicyFeature(FeatureType.ENV, (prompt_dim() + extra,))
    backbone = read_backbone(cfg.backbone_weights) if cfg.backbone_weights else None
    if backbone is not None and cfg.use_image:
        stats = {**stats, SIM_IMAGE_KEY: backbone_image_stats(backbone[1], image_px, stats)}
    config = make_policy_config(
        cfg.policy_type,
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        device=cfg.device,
        push_to_hub=False,
        n_action_steps=cfg.n_action_steps,
        vision_backbone="resnet18",
        pretrained_backbone_weights=None,  # from scratch: nothing is downloaded
        optimizer_lr=cfg.learning_rate,
        optimizer_weight_decay=cfg.weight_decay,
        **(act_options(cfg) if cfg.policy_type == "act" else diffusion_options(cfg, image_px)),
    )
    torch.manual_seed(cfg.seed)
    policy = get_policy_class(cfg.policy_type)(config)
    if backbone is not None and cfg.use_image:
        load_pretrained_backbone(policy, backbone[0], freeze=cfg.freeze_backbone)
    policy = policy.to(cfg.device)
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    if cfg.prompt_conditioning:  # after the batch dimension is added, before the device
        names = [type(s).__name__ for s in preprocessor.steps]
        at = names.index("AddBatchDimensionProcessorStep") + 1
        preprocessor.steps.insert(at, PromptVectorStep())
        if objects is not None:
            preprocessor.steps.insert(at + 1, objects)
    return policy, preprocessor, postprocessor


def backbone_image_stats(
    backbone_config: dict[str, Any], image_px: int, stats: dict[str, dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """The image mean/std a pretrained backbone was trained with, shaped as the dataset's."""
    if backbone_config["image_px"] != image_px:
        raise ValueError(
            f"the backbone was pretrained on {backbone_config['image_px']} px images, the "
            f"policy sees {image_px} px (policy_image_px)"
        )
    shape = stats[SIM_IMAGE_KEY]["mean"].shape
    return {
        k: torch.tensor(backbone_config[f"image_{k}"], dtype=torch.float32).reshape(shape)
        for k in ("mean", "std")
    }


def load_pretrained_backbone(policy: Any, weights: dict[str, torch.Tensor], freeze: bool) -> None:
    """Copy ``executor-pretrain-backbone`` weights into ACT's ``model.backbone`` (every
    key must match); ``freeze`` leaves them out of training (and of the optimizer)."""
    backbone = policy.model.backbone
    missing, unexpected = backbone.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"backbone weights do not fit ACT's ResNet-18: missing {missing[:4]!r}, "
            f"unexpected {unexpected[:4]!r}"
        )
    backbone.requires_grad_(not freeze)


def act_options(cfg: TrainPolicyConfig) -> dict[str, Any]:
    return {
        "chunk_size": cfg.chunk_size,
        "dim_model": cfg.dim_model,
        "n_heads": cfg.n_heads,
        "dim_feedforward": cfg.dim_feedforward,
        "n_encoder_layers": cfg.n_encoder_layers,
        "n_decoder_layers": cfg.n_decoder_layers,
        "dropout": cfg.dropout,
        "use_vae": False,
        "optimizer_lr_backbone": cfg.learning_rate,
    }


def diffusion_options(cfg: TrainPolicyConfig, image_px: int) -> dict[str, Any]:
    """One observation step, ``chunk_size`` actions from the current one."""
    if cfg.diffusion_crop_px > image_px:
        raise ValueError(
            f"diffusion_crop_px {cfg.diffusion_crop_px!r} is larger than the {image_px} px images"
        )
    crop = (cfg.diffusion_crop_px,) * 2 if cfg.diffusion_crop_px else None
    return {
        "n_obs_steps": 1,
        "horizon": cfg.chunk_size,
        "crop_shape": crop,
        "use_group_norm": True,  # no pretrained batch-norm statistics to keep
        "down_dims": tuple(cfg.diffusion_down_dims),
        "noise_scheduler_type": "DDIM",
        "num_inference_steps": cfg.diffusion_inference_steps,
    }


def add_observation_steps(batch: dict[str, Any]) -> dict[str, Any]:
    """(B, ...) observations -> (B, 1, ...): the observation-step axis a diffusion policy
    trains on (``n_obs_steps`` 1; at inference its own queue adds it)."""
    for key, value in batch.items():
        if key.startswith("observation.") and isinstance(value, torch.Tensor):
            batch[key] = value.unsqueeze(1)
    return batch


def save_pretrained(
    folder: Path, policy: Any, preprocessor: Any, postprocessor: Any, action_space: str
) -> None:
    policy.save_pretrained(folder)
    preprocessor.save_pretrained(folder)
    postprocessor.save_pretrained(folder)
    write_action_space(folder, action_space)


def actions_to_grasp(
    actions: torch.Tensor, grasp: GraspSpace, start_rad: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, T, 6) joint targets -> grasp-space targets, same shape and dtype; with
    ``start_rad`` (B, 6), x, y, z measured from its grasp points (``grasp_relative``)."""
    targets = grasp.to_grasp(actions.numpy())
    if start_rad is not None:
        targets = grasp.relative_to(targets, start_rad.numpy())
    return torch.from_numpy(targets).to(actions.dtype)


# ------------------------------------------------------------------------- training
def train(cfg: TrainPolicyConfig) -> dict[str, Any]:

    torch.set_num_threads(cfg.num_threads)
    if cfg.device != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"device {cfg.device!r}: this machine has no CUDA device")
    out = Path(cfg.output_dir)
    save_config_json(cfg, out / "train_config.json")
    expert_eps = select_expert_episodes(cfg)
    datasets = [open_dataset(cfg.expert_root, expert_eps, cfg.chunk_size)]
    masks = [expert_frame_mask(datasets[0], cfg)]
    shares = [1.0]
    neural_eps: list[int] = []
    if cfg.neural_root is not None:
        neural_eps = select_neural_episodes(cfg)
        datasets.append(open_dataset(cfg.neural_root, neural_eps, cfg.chunk_size))
        masks.append(np.ones(len(datasets[1]), bool))
        shares = [1.0 - cfg.neural_ratio, cfg.neural_ratio]
    logger.info(
        "expert frames trained on (%s): %d of %d", cfg.expert_frames, masks[0].sum(), len(masks[0])
    )
    image_px = cfg.policy_image_px or datasets[0].meta.features[SIM_IMAGE_KEY]["shape"][0]
    grasp = GraspSpace() if cfg.action_space != "joints" else None
    relative = cfg.action_space == "grasp_relative"
    stats = feature_stats(datasets, masks, grasp, cfg.chunk_size if relative else 0)
    policy, preprocessor, postprocessor = make_policy_and_processors(cfg, stats, image_px)
    optimizer = policy.config.get_optimizer_preset().build(policy.get_optim_params())
    step, elapsed_s = 0, 0.0
    resume = latest_checkpoint(out)
    if resume is not None:
        weights = load_file(str(resume / PRETRAINED_DIR / "model.safetensors"), cfg.device)
        policy.load_state_dict(weights)
        state = load_training_state(resume, optimizer, cfg)
        step, elapsed_s = int(state["step"]), float(state.get("elapsed_s", 0.0))
        logger.info("resuming from %s (step %d)", resume, step)
    data = torch.utils.data.ConcatDataset(datasets)
    # each step's batch is a function of (seed, step), so a resumed run sees the batches an
    # uninterrupted run would have seen
    sizes = [len(d) for d in datasets]
    order = (  # drawn lazily, step by step
        i
        for k in range(step, cfg.steps)
        for i in mixture_sampler(sizes, shares, cfg.batch_size, cfg.seed * 1_000_003 + k, masks)
    )
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=cfg.batch_size,
        sampler=order,
        num_workers=cfg.num_workers,
        drop_last=True,
    )
    accelerator = Accelerator(cpu=cfg.device == "cpu")
    tracker = MetricsTracker(
        cfg.batch_size,
        len(data),
        sum(d.num_episodes for d in datasets),
        {
            "loss": AverageMeter("loss", ":.3f"),
            "grad_norm": AverageMeter("grdn", ":.3f"),
            "lr": AverageMeter("lr", ":0.1e"),
            "update_s": AverageMeter("updt_s", ":.3f"),
        },
        initial_step=step,
        accelerator=accelerator,
    )
    logger.info(
        "training %s: %d expert episodes%s, %d steps of %d",
        cfg.policy_type,
        len(expert_eps),
        f" + {len(neural_eps)} neural ({cfg.neural_ratio:.0%} of each batch)" if neural_eps else "",
        cfg.steps,
        cfg.batch_size,
    )
    began = time.perf_counter() - elapsed_s
    losses: list[float] = []
    for batch in loader:
        # the image shifts, dropout and diffusion noise of a step: functions of (seed, step)
        step_seed = cfg.seed * 1_000_003 + step
        torch.manual_seed(step_seed)
        shifts = torch.Generator().manual_seed(step_seed)
        batch[SIM_IMAGE_KEY] = resize_square(
            random_shift(batch[SIM_IMAGE_KEY], cfg.image_shift_px, shifts), image_px
        )
        if grasp is not None:
            start = batch[STATE_KEY] if relative else None
            batch["action"] = actions_to_grasp(batch["action"], grasp, start)
        batch = preprocessor(batch)
        if cfg.policy_type == "diffusion":
            batch = add_observation_steps(batch)
        tracker, _ = update_policy(
            tracker, policy, batch, optimizer, cfg.grad_clip_norm, accelerator
        )
        step += 1
        tracker.step()
        losses.append(float(tracker.loss.val))
        if step % cfg.log_every == 0:
            logger.info("step %d: %s", step, tracker)
            tracker.reset_averages()
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save(cfg, out, step, policy, preprocessor, postprocessor, optimizer, began)
    final = latest_checkpoint(out)
    assert final is not None
    with atomic_path(out / PRETRAINED_DIR, directory=True) as tmp:
        shutil.copytree(final / PRETRAINED_DIR, tmp, dirs_exist_ok=True)
    summary = {
        "steps": step,
        "train_s": time.perf_counter() - began,
        "expert_episodes": expert_eps,
        "expert_frames": int(masks[0].sum()),
        "neural_episodes": len(neural_eps),
        "neural_ratio": cfg.neural_ratio if neural_eps else 0.0,
        "last_losses": losses[-10:],
        "config": config_to_dict(cfg),
    }
    write_json_atomic(out / "train_summary.json", summary)
    return summary


def _save(cfg, out, step, policy, preprocessor, postprocessor, optimizer, began) -> Path:
    def write_model(folder: Path) -> None:
        save_pretrained(
            folder / PRETRAINED_DIR, policy, preprocessor, postprocessor, cfg.action_space
        )

    return save_checkpoint(
        out,
        step,
        write_model,
        optimizer,
        {"elapsed_s": time.perf_counter() - began},
        cfg,
        keep=cfg.keep_checkpoints,
    )


@cli_main("executor-train-policy")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(TrainPolicyConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    require_local_dataset(cfg.expert_root)
    if cfg.neural_root is not None:
        require_local_dataset(cfg.neural_root)
    summary = train(cfg)
    print(json.dumps({k: summary[k] for k in ("steps", "train_s", "neural_episodes")}, indent=2))
    print(f"policy: {(Path(cfg.output_dir) / PRETRAINED_DIR).resolve()}")


if __name__ == "__main__":
    sys.exit(main())
