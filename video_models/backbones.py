"""Backbone adapters: one ``ExecutorVideoPipeline`` over three diffusers transformers.

The pipeline's ``__call__``, the trainer's flow-matching loss and the GRPO sampler all go
through four calls, whose meaning is the same for every backbone:

* ``encode_prompt(pipe, texts, device) -> (B, L, D)``: the backbone's own text encoder. Every
  backbone packs its text into ONE tensor, zero on the rows that are not attended (padding),
  so that batches index, concatenate and cache like Wan's UMT5 states; the attention mask
  is read back as "row not all zero". Zero text is the unconditional input of CFG.
* ``prepare_condition(pipe, first_frames, num_frames)``: the first-frame conditioning in the
  pipeline's own convention (a tensor or a :class:`ImageCondition`, both index by batch).
* ``forward(pipe, transformer, latents, condition, timestep, text)``: the transformer's
  output as the velocity ``noise - x0`` (Wan's pixel presets: x0, see ``to_velocity``).
* ``encode_video`` / ``decode`` and the latent geometry of the backbone's VAE.

Conventions (read from diffusers' own pipelines, re-implemented here):

* **Wan2.1-I2V** (``wan``): ``cat([noisy, mask folded like the VAE folds time, encoded
  "first frame then black" video])`` (+ CLIP image states at real scale). The pixel-space
  ``debug``/``sim`` presets are this backbone without a VAE.
* **LTX-2** (``ltx2``, ``LTX2VideoTransformer3DModel``): frame replacement. The first latent
  frame is the VAE latent of the image, kept clean: its tokens get timestep 0, the others
  the step's. Text: all Gemma-3 hidden states stacked, then the ``LTX2TextConnectors``.
  Video only: the audio stream gets one silent token and ``isolate_modalities=True`` cuts
  the audio<->video cross-attention, so the video does not depend on it. The velocity of the
  replaced frame is the one that lands on the image latent (``(x - z_image) / sigma``), so
  Euler, SDE and the final ODE step all end on the clean first frame.
* **HunyuanVideo-1.5** (``hunyuanvideo15``, ``HunyuanVideo15Transformer3DModel``):
  ``cat([noisy, image latent on frame 0 and zeros after, mask])`` plus SigLIP image states;
  text = Qwen2.5-VL hidden states (3rd from last layer, chat template, the template's
  prefix cropped) followed by the byT5 states of quoted glyph text (zeros when there is
  none), packed into one tensor (byT5 rows zero-padded to the Qwen width).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from video_models.processing_executor import condition_video, first_frame_mask, tensor_to_clips
from video_models.text_encoding import check_text_lengths, encode_text

logger = logging.getLogger(__name__)

BackboneName = Literal["wan", "ltx2", "hunyuanvideo15"]
BACKBONES: tuple[str, ...] = ("wan", "ltx2", "hunyuanvideo15")


def hunyuan_system_message() -> str:
    """The system prompt HunyuanVideo-1.5's text encoder was trained with, read from its
    diffusers pipeline (exactly, whitespace included) rather than retyped."""
    from diffusers.pipelines.hunyuan_video1_5.pipeline_hunyuan_video1_5 import (
        HunyuanVideo15Pipeline,
    )

    params = inspect.signature(HunyuanVideo15Pipeline._get_mllm_prompt_embeds).parameters
    return params["system_message"].default


HUNYUAN_GLYPH_TOKENS = 256  # byT5 window of HunyuanVideo-1.5
HUNYUAN_SKIP_LAYERS = 2  # Qwen2.5-VL hidden state used: the 3rd from last
LTX2_FPS = 24.0  # LTX-2's RoPE time axis is in seconds; frames are read at this rate


@dataclass
class ImageCondition:
    """Conditioning that is more than one tensor: latents (B, ...) + image states (B, N, D)."""

    latents: torch.Tensor
    image_embeds: torch.Tensor | None = None

    def __getitem__(self, idx: Any) -> ImageCondition:
        embeds = None if self.image_embeds is None else self.image_embeds[idx]
        return ImageCondition(self.latents[idx], embeds)

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    def to(self, *args: Any, **kwargs: Any) -> ImageCondition:
        embeds = None if self.image_embeds is None else self.image_embeds.to(*args, **kwargs)
        return ImageCondition(self.latents.to(*args, **kwargs), embeds)

    @staticmethod
    def cat(parts: list[ImageCondition]) -> ImageCondition:
        embeds = [p.image_embeds for p in parts]
        return ImageCondition(
            torch.cat([p.latents for p in parts]),
            None if any(e is None for e in embeds) else torch.cat(embeds),
        )


def cat_condition(parts: list[Any]) -> Any:
    if isinstance(parts[0], ImageCondition):
        return ImageCondition.cat(parts)
    return torch.cat(parts)


def text_mask(text: torch.Tensor) -> torch.Tensor:
    """(B, L) 1 where a packed text row is attended (not all zero)."""
    return (text.abs().amax(dim=-1) > 0).to(text.dtype)


def _sigma(pipe: Any, timestep: torch.Tensor) -> torch.Tensor:
    return timestep.float() / pipe.scheduler.config.num_train_timesteps


def _vae_encode(vae: Any, video: torch.Tensor) -> torch.Tensor:
    return vae.encode(video.to(vae.device, vae.dtype)).latent_dist.mode()


# ----------------------------------------------------------------------------------- Wan
class WanBackbone:
    """Wan2.1-I2V (and the pixel-space presets: no VAE, RGB is the flow's space)."""

    name = "wan"

    def temporal_scale(self, pipe: Any) -> int:
        return int(pipe.vae.config.scale_factor_temporal) if pipe.vae is not None else 1

    def spatial_scale(self, pipe: Any) -> int:
        return int(pipe.vae.config.scale_factor_spatial) if pipe.vae is not None else 1

    def channels(self, pipe: Any) -> int:
        return int(pipe.vae.config.z_dim) if pipe.vae is not None else 3

    def encode_prompt(self, pipe: Any, prompts: list[str], device: torch.device) -> torch.Tensor:
        return encode_text(
            pipe.tokenizer,
            pipe.text_encoder,
            prompts,
            pipe.config.max_text_tokens,
            device=device,
            dtype=pipe.transformer.dtype,
        )

    def encode_video(self, pipe: Any, video: torch.Tensor) -> torch.Tensor:
        if pipe.vae is None:
            return video
        z = _vae_encode(pipe.vae, video)
        mean = torch.tensor(pipe.vae.config.latents_mean).view(1, -1, 1, 1, 1).to(z)
        std = torch.tensor(pipe.vae.config.latents_std).view(1, -1, 1, 1, 1).to(z)
        return (z - mean) / std

    def decode(self, pipe: Any, latents: torch.Tensor) -> torch.Tensor:
        vae = pipe.vae
        if vae is None:
            return latents
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
        z = latents.to(vae.dtype) * std.to(latents.device, vae.dtype) + mean.to(
            latents.device, vae.dtype
        )
        return vae.decode(z.to(vae.device), return_dict=False)[0]

    def prepare_condition(
        self, pipe: Any, first_frames: torch.Tensor, num_frames: int
    ) -> torch.Tensor | ImageCondition:
        """Mask + encoded video; with a CLIP image encoder (Wan2.1-I2V) also its states."""
        encoded = self.encode_video(pipe, condition_video(first_frames, num_frames))
        b, _, _, h, w = encoded.shape
        mask = first_frame_mask(
            b, num_frames, h, w, self.temporal_scale(pipe), encoded.device, encoded.dtype
        )
        condition = torch.cat([mask, encoded], dim=1)
        if pipe.image_encoder is None:
            return condition
        squares = list(tensor_to_clips(first_frames.float()[:, :, None])[:, 0])
        return ImageCondition(condition, pipe.encode_image(squares, condition.device))

    def forward(
        self,
        pipe: Any,
        transformer: Any,
        latents: torch.Tensor,
        condition: torch.Tensor,
        timestep: torch.Tensor,
        text: torch.Tensor,
        image_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if isinstance(condition, ImageCondition):
            condition, image_embeds = condition.latents, condition.image_embeds
        model_input = torch.cat([latents, condition.to(latents.dtype)], dim=1)
        return transformer(
            hidden_states=model_input,
            timestep=timestep,
            encoder_hidden_states=text,
            encoder_hidden_states_image=image_embeds,
            return_dict=False,
        )[0]


# --------------------------------------------------------------------------------- LTX-2
class LTX2Backbone:
    """LTX-2 image-to-video (video stream of the audio-video transformer)."""

    name = "ltx2"

    def temporal_scale(self, pipe: Any) -> int:
        return int(pipe.vae.temporal_compression_ratio)

    def spatial_scale(self, pipe: Any) -> int:
        return int(pipe.vae.spatial_compression_ratio)

    def channels(self, pipe: Any) -> int:
        return int(pipe.vae.config.latent_channels)

    @torch.no_grad()
    def encode_prompt(self, pipe: Any, prompts: list[str], device: torch.device) -> torch.Tensor:
        tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
        texts = [" ".join(t.split()) for t in prompts]
        max_tokens = pipe.config.max_text_tokens
        check_text_lengths(tokenizer, texts, max_tokens)
        tokenizer.padding_side = "left"  # Gemma's chat-style padding, as LTX-2 encodes
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokens = tokenizer(
            texts, padding="max_length", max_length=max_tokens, truncation=True, return_tensors="pt"
        )
        ids = tokens["input_ids"].to(encoder.device)
        mask = tokens["attention_mask"].to(encoder.device)
        hidden = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        stacked = torch.stack(hidden.hidden_states, dim=-1).flatten(2, 3)
        connectors = pipe.connectors
        stacked = stacked.to(connectors.device, connectors.dtype)
        video_text, _, video_mask = connectors(stacked, mask.to(connectors.device), "left")
        video_text = video_text * video_mask[..., None].to(video_text.dtype)
        return video_text.to(device=device, dtype=pipe.transformer.dtype)

    def _normalise(self, vae: Any, z: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        mean = vae.latents_mean.view(1, -1, 1, 1, 1).to(z.device, z.dtype)
        std = vae.latents_std.view(1, -1, 1, 1, 1).to(z.device, z.dtype)
        scale = float(vae.config.scaling_factor)
        if inverse:
            return z * std / scale + mean
        return (z - mean) * scale / std

    def encode_video(self, pipe: Any, video: torch.Tensor) -> torch.Tensor:
        return self._normalise(pipe.vae, _vae_encode(pipe.vae, video))

    def decode(self, pipe: Any, latents: torch.Tensor) -> torch.Tensor:
        vae = pipe.vae
        z = self._normalise(vae, latents.to(vae.device, vae.dtype), inverse=True)
        temb = None
        if vae.config.timestep_conditioning:  # decode at timestep 0 (clean latents)
            temb = torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)
        return vae.decode(z, temb, return_dict=False)[0]

    def prepare_condition(
        self, pipe: Any, first_frames: torch.Tensor, num_frames: int
    ) -> torch.Tensor:
        """The image's clean latent frame, (B, C, 1, h, w)."""
        return self.encode_video(pipe, first_frames[:, :, None])

    def forward(
        self,
        pipe: Any,
        transformer: Any,
        latents: torch.Tensor,
        condition: torch.Tensor,
        timestep: torch.Tensor,
        text: torch.Tensor,
        image_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cfg = pipe.transformer.config
        p, pt = int(cfg.patch_size), int(cfg.patch_size_t)
        b, _, t, h, w = latents.shape
        clean = condition.to(latents.dtype)
        x = torch.cat([clean, latents[:, :, 1:]], dim=2)
        tokens = _pack(x, p, pt)
        per_frame = (h // p) * (w // p)
        t_tokens = timestep.float()[:, None].expand(b, tokens.shape[1]).clone()
        if pt == 1:
            t_tokens[:, :per_frame] = 0.0  # the given frame is clean
        audio_width = (
            cfg.caption_channels if cfg.use_prompt_embeddings else cfg.audio_cross_attention_dim
        )
        silent = tokens.new_zeros(b, 1, cfg.audio_in_channels)
        silent_text = tokens.new_zeros(b, 1, audio_width)
        out = transformer(
            hidden_states=tokens,
            audio_hidden_states=silent,
            encoder_hidden_states=text,
            audio_encoder_hidden_states=silent_text,
            timestep=t_tokens,
            audio_timestep=timestep.float(),
            sigma=timestep.float(),
            encoder_attention_mask=text_mask(text),
            audio_encoder_attention_mask=tokens.new_ones(b, 1),
            num_frames=t // pt,
            height=h // p,
            width=w // p,
            fps=LTX2_FPS,
            audio_num_frames=1,
            isolate_modalities=True,
            return_dict=False,
        )[0]
        velocity = _unpack(out, t // pt, h // p, w // p, p, pt)
        sigma = _sigma(pipe, timestep).view(-1, 1, 1, 1, 1).to(latents.device)
        first = (latents[:, :, :1].float() - clean.float()) / sigma
        return torch.cat([first.to(velocity.dtype), velocity[:, :, 1:]], dim=2)


def _pack(x: torch.Tensor, p: int, pt: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, T/pt * H/p * W/p, C * pt * p * p), frames outermost."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t // pt, pt, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 6, 1, 3, 5, 7).flatten(4, 7).flatten(1, 3)


def _unpack(tokens: torch.Tensor, t: int, h: int, w: int, p: int, pt: int) -> torch.Tensor:
    b = tokens.shape[0]
    x = tokens.reshape(b, t, h, w, -1, pt, p, p)
    return x.permute(0, 4, 1, 5, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(2, 3)


# ----------------------------------------------------------------------- HunyuanVideo-1.5
class HunyuanVideo15Backbone:
    """HunyuanVideo-1.5 image-to-video."""

    name = "hunyuanvideo15"

    def temporal_scale(self, pipe: Any) -> int:
        return int(pipe.vae.config.temporal_compression_ratio)

    def spatial_scale(self, pipe: Any) -> int:
        return int(pipe.vae.config.spatial_compression_ratio)

    def channels(self, pipe: Any) -> int:
        return int(pipe.vae.config.latent_channels)

    @torch.no_grad()
    def encode_prompt(self, pipe: Any, prompts: list[str], device: torch.device) -> torch.Tensor:
        texts = [" ".join(t.split()) for t in prompts]
        check_text_lengths(pipe.tokenizer, texts, pipe.config.max_text_tokens)
        qwen = self._qwen_states(pipe, texts)
        glyph = self._glyph_states(pipe, prompts, qwen.shape[-1])
        packed = torch.cat([qwen, glyph.to(qwen)], dim=1)
        return packed.to(device=device, dtype=pipe.transformer.dtype)

    def _qwen_states(self, pipe: Any, texts: list[str]) -> torch.Tensor:
        tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
        max_tokens = pipe.config.max_text_tokens
        crop = 0
        if getattr(tokenizer, "chat_template", None):
            texts, crop = _chat_wrap(tokenizer, texts)
        tokens = tokenizer(
            texts,
            padding="max_length",
            max_length=max_tokens + crop,
            truncation=True,
            add_special_tokens=crop == 0,
            return_tensors="pt",
        )
        ids = tokens["input_ids"].to(encoder.device)
        mask = tokens["attention_mask"].to(encoder.device)
        hidden = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        states = hidden.hidden_states[-(HUNYUAN_SKIP_LAYERS + 1)][:, crop:]
        return states * mask[:, crop:, None].to(states.dtype)

    def _glyph_states(self, pipe: Any, prompts: list[str], width: int) -> torch.Tensor:
        """byT5 states of the quoted text in each prompt, zero where there is none."""
        from diffusers.pipelines.hunyuan_video1_5.pipeline_hunyuan_video1_5 import (
            extract_glyph_texts,
        )

        d2 = int(pipe.transformer.config.text_embed_2_dim)
        out = torch.zeros(len(prompts), HUNYUAN_GLYPH_TOKENS, width)
        if pipe.text_encoder_2 is None or pipe.tokenizer_2 is None:
            return out
        for i, prompt in enumerate(prompts):
            glyph = extract_glyph_texts(prompt)
            if glyph is None:
                continue
            # the quoted text is cut to the byT5 window only after saying so: never silently
            check_text_lengths(pipe.tokenizer_2, [glyph], HUNYUAN_GLYPH_TOKENS)
            tok = pipe.tokenizer_2(
                glyph,
                padding="max_length",
                max_length=HUNYUAN_GLYPH_TOKENS,
                truncation=True,
                return_tensors="pt",
            ).to(pipe.text_encoder_2.device)
            states = pipe.text_encoder_2(
                input_ids=tok.input_ids, attention_mask=tok.attention_mask.float()
            )[0]
            out[i, :, :d2] = (states[0] * tok.attention_mask[0, :, None]).float().cpu()
        return out

    def _split_text(self, pipe: Any, text: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = pipe.config.max_text_tokens
        d2 = int(pipe.transformer.config.text_embed_2_dim)
        qwen, glyph = text[:, :n], text[:, n:, :d2]
        mask = text_mask(qwen)
        # An all-zero text (CFG's unconditional input, text dropout) attends its first row
        # so that the token refiner's masked mean is defined.
        mask[:, 0] = torch.where(mask.sum(dim=1) > 0, mask[:, 0], torch.ones_like(mask[:, 0]))
        return qwen, mask, glyph, text_mask(glyph)

    # One video at a time: the VAE's causal attention mask in diffusers 0.42 does not
    # broadcast over a batch (and one video at a time bounds the memory at real scale).
    def encode_video(self, pipe: Any, video: torch.Tensor) -> torch.Tensor:
        z = torch.cat([_vae_encode(pipe.vae, v[None]) for v in video])
        return z * float(pipe.vae.config.scaling_factor)

    def decode(self, pipe: Any, latents: torch.Tensor) -> torch.Tensor:
        vae = pipe.vae
        z = latents.to(vae.device, vae.dtype) / float(vae.config.scaling_factor)
        return torch.cat([vae.decode(one[None], return_dict=False)[0] for one in z])

    def prepare_condition(
        self, pipe: Any, first_frames: torch.Tensor, num_frames: int
    ) -> ImageCondition:
        image = self.encode_video(pipe, first_frames[:, :, None])  # (B, C, 1, h, w)
        t_lat = (num_frames - 1) // self.temporal_scale(pipe) + 1
        b, c, _, h, w = image.shape
        cond = image.new_zeros(b, c, t_lat, h, w)
        cond[:, :, :1] = image
        mask = image.new_zeros(b, 1, t_lat, h, w)
        mask[:, :, 0] = 1.0
        return ImageCondition(
            torch.cat([cond, mask], dim=1), self._image_states(pipe, first_frames)
        )

    def _image_states(self, pipe: Any, first_frames: torch.Tensor) -> torch.Tensor:
        """SigLIP states of the first frames; zeros (text-to-video) without an encoder."""
        dim = int(pipe.transformer.config.image_embed_dim)
        if pipe.image_encoder is None or pipe.image_processor is None:
            return first_frames.new_zeros(first_frames.shape[0], 1, dim)
        squares: list[np.ndarray] = list(tensor_to_clips(first_frames.float()[:, :, None])[:, 0])
        inputs = pipe.image_processor(images=squares, return_tensors="pt")
        enc = pipe.image_encoder
        pixels = inputs["pixel_values"].to(enc.device, enc.dtype)
        return enc(pixel_values=pixels).last_hidden_state.to(first_frames.device)

    def forward(
        self,
        pipe: Any,
        transformer: Any,
        latents: torch.Tensor,
        condition: ImageCondition,
        timestep: torch.Tensor,
        text: torch.Tensor,
        image_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if pipe.transformer.config.get("use_meanflow", False):
            raise ValueError(
                "this HunyuanVideo-1.5 transformer is a meanflow (step-distilled) one: it needs "
                "the next timestep (timestep_r) per step, which the shared sampler does not give"
            )
        qwen, mask, glyph, glyph_mask = self._split_text(pipe, text)
        model_input = torch.cat([latents, condition.latents.to(latents.dtype)], dim=1)
        return transformer(
            hidden_states=model_input,
            timestep=timestep.to(latents.dtype),
            encoder_hidden_states=qwen,
            encoder_attention_mask=mask,
            encoder_hidden_states_2=glyph,
            encoder_attention_mask_2=glyph_mask,
            image_embeds=condition.image_embeds.to(latents.dtype),
            return_dict=False,
        )[0]


def _chat_wrap(tokenizer: Any, texts: list[str]) -> tuple[list[str], int]:
    """Texts in the chat template with HunyuanVideo-1.5's system message, and the number of
    template tokens before the user's text (cropped from the states, as its pipeline does)."""

    def wrap(text: str) -> str:
        messages = [
            {"role": "system", "content": hunyuan_system_message()},
            {"role": "user", "content": text},
        ]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    a = tokenizer(wrap(""), add_special_tokens=False)["input_ids"]
    b = tokenizer(wrap("x"), add_special_tokens=False)["input_ids"]
    crop = next((i for i, (u, v) in enumerate(zip(a, b, strict=False)) if u != v), len(a))
    return [wrap(t) for t in texts], crop


_ADAPTERS = {
    "wan": WanBackbone(),
    "ltx2": LTX2Backbone(),
    "hunyuanvideo15": HunyuanVideo15Backbone(),
}


def get_backbone(name: str) -> Any:
    if name not in _ADAPTERS:
        raise ValueError(f"unknown backbone {name!r}; known: {list(BACKBONES)}")
    return _ADAPTERS[name]
