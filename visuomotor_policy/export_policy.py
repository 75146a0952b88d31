"""``executor-export-policy``: a LeRobot ``pretrained_model/`` folder with its weights
stored in half precision, small enough to commit or ship.

The floating-point tensors of ``model.safetensors`` are cast to ``dtype`` (float16 halves
an ACT with ResNet-18 from 54 MB to 27 MB). LeRobot's loader (safetensors' ``load_model``,
i.e. ``load_state_dict``) copies them into the policy's float32 parameters, so the exported
policy runs in float32 with rounded weights. Every other file (``config.json``, the
processors and their normalisation statistics) is copied unchanged, except that
``n_action_steps`` (when not 0) is written into ``config.json``: the chunk length the policy
was evaluated with becomes its own, so a node left at its default runs it the same way.
The folder is written beside the destination and renamed into place.

    executor-export-policy --src RUN/checkpoints/step_005000/pretrained_model \\
        --dst checkpoints/policy_sim/pretrained_model
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from lerobot.configs import PreTrainedConfig
from safetensors.torch import load_file, save_file

from executor_core.atomic_io import atomic_path
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config
from visuomotor_policy.modeling_policy import check_action_steps, check_policy_dir

logger = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class ExportPolicyConfig:
    src: Path = Path("outputs/policy_sim/pretrained_model")  # a LeRobot pretrained_model/
    dst: Path = Path("checkpoints/policy_sim/pretrained_model")
    dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    n_action_steps: int = 0  # actions executed per inference, into config.json (0: keep)

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if self.n_action_steps < 0:
            raise ValueError(f"n_action_steps must be >= 0, got {self.n_action_steps!r}")
        if Path(self.src).resolve() == Path(self.dst).resolve():
            raise ValueError(f"dst must differ from src, both are {str(self.src)!r}")


PRESETS = {
    "debug": ExportPolicyConfig(
        src=Path("outputs/policy_debug/pretrained_model"),
        dst=Path("outputs/policy_debug/exported"),
    ),
}


def export_policy(cfg: ExportPolicyConfig) -> dict[str, float | int | str]:
    """Copy ``src`` to ``dst`` with the weights cast; return sizes and the rounding error."""
    src = check_policy_dir(cfg.src)
    config_json = json.loads((src / CONFIG).read_text())
    if cfg.n_action_steps:
        policy_config = PreTrainedConfig.from_pretrained(src, local_files_only=True)
        check_action_steps(policy_config, cfg.n_action_steps)
        config_json["n_action_steps"] = cfg.n_action_steps
    dtype = _DTYPES[cfg.dtype]
    tensors = load_file(src / WEIGHTS)
    cast, worst = {}, 0.0
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            rounded = tensor.to(dtype)
            if not torch.isfinite(rounded).all() and torch.isfinite(tensor).all():
                raise ValueError(f"{name} overflows {cfg.dtype}; export it as bfloat16 or float32")
            if tensor.numel():
                worst = max(worst, float((rounded.float() - tensor.float()).abs().max()))
            cast[name] = rounded.contiguous()
        else:
            cast[name] = tensor
    with atomic_path(cfg.dst, directory=True) as tmp:
        for path in sorted(src.iterdir()):
            if path.is_dir():
                shutil.copytree(path, tmp / path.name)
            elif path.name != WEIGHTS:
                shutil.copy2(path, tmp / path.name)
        save_file(cast, str(tmp / WEIGHTS), metadata={"format": "pt"})
        if cfg.n_action_steps:
            (tmp / CONFIG).write_text(json.dumps(config_json, indent=4) + "\n")
    summary = {
        "src": str(src),
        "dst": str(cfg.dst),
        "dtype": cfg.dtype,
        "src_bytes": (src / WEIGHTS).stat().st_size,
        "dst_bytes": (Path(cfg.dst) / WEIGHTS).stat().st_size,
        "max_weight_rounding": worst,
        "n_action_steps": config_json.get("n_action_steps"),
    }
    logger.info("exported %s -> %s (%s)", src, cfg.dst, cfg.dtype)
    return summary


@cli_main("executor-export-policy")
def main(argv: list[str] | None = None) -> int:
    configure_cli_logging()
    cfg = parse_config(ExportPolicyConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    print(json.dumps(export_policy(cfg), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
