"""Two ways to ask a vision-language model about images: a local transformers model and an
OpenAI-compatible HTTP endpoint. The task proposer and the VLM judge both sit on these.

Both expose ``generate(images, prompts) -> list[str]``: per request one image (H, W, 3)
uint8, or a sequence of such images shown in order in one message (the VLM judge sends the
sampled frames of a video this way), and one user prompt; one reply text per request.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from executor_core.frames import center_crop_resize
from executor_core.safe_loading import refuse_pickles

logger = logging.getLogger(__name__)


# One request's images: a single (H, W, 3) uint8 image or a sequence of them, in order.
RequestImages = np.ndarray | Sequence[np.ndarray]


class VLMBackend(Protocol):
    """A model that answers one text prompt about one image (or a few, in order), for a
    batch of requests."""

    name: str

    def generate(self, images: Sequence[RequestImages], prompts: Sequence[str]) -> list[str]: ...


def request_images(images: RequestImages) -> list[np.ndarray]:
    """One request's images as a list (a single image becomes a list of one)."""
    return [images] if isinstance(images, np.ndarray) else list(images)


def _check_requests(images: Sequence[RequestImages], prompts: Sequence[str]) -> None:
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
    for i, request in enumerate(images):
        if not request_images(request):
            raise ValueError(f"request {i} has no image")
        for img in request_images(request):
            if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
                shape = getattr(img, "shape", None)
                raise ValueError(f"image {i} must be (H, W, 3), got {shape!r}")
            if img.dtype != np.uint8:
                raise ValueError(f"image {i} must be uint8, got {img.dtype!r}")


@dataclass
class TransformersVLMConfig:
    model_path: Path = Path("checkpoints/vlm")
    max_new_tokens: int = 384
    batch_size: int = 4
    device: str = "auto"  # "auto" = cuda when present, else cpu
    dtype: str = "auto"  # "auto" = bfloat16 on cuda, float32 on cpu
    do_sample: bool = False
    temperature: float = 0.7

    def __post_init__(self) -> None:
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be > 0, got {self.max_new_tokens!r}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size!r}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be auto/float32/bfloat16/float16, got {self.dtype!r}")
        if not 0.0 < self.temperature < math.inf:
            raise ValueError(f"temperature must be > 0 and finite, got {self.temperature!r}")


class TransformersVLM:
    """A local image-text-to-text model (Qwen2.5-VL, SmolVLM, Idefics3, ...) via AutoProcessor
    + AutoModelForImageTextToText, loaded from a local directory only (no hub access)."""

    name = "transformers"

    def __init__(self, cfg: TransformersVLMConfig) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = Path(cfg.model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no VLM at {path} (expected {path / 'config.json'})")
        refuse_pickles(path, hint="keep the VLM's safetensors files only")
        self.cfg = cfg
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        )
        if cfg.dtype == "auto":
            dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        else:
            dtype = getattr(torch, cfg.dtype)
        self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        # Decoder-only generation with a padded batch needs the padding on the left.
        self.processor.tokenizer.padding_side = "left"
        self.model = AutoModelForImageTextToText.from_pretrained(
            path, local_files_only=True, use_safetensors=True, dtype=dtype
        ).to(self.device)
        self.model.eval()
        self.name = f"transformers:{path.name}"
        logger.info("loaded VLM %s on %s (%s)", path, self.device, dtype)

    @torch.no_grad()
    def generate(self, images: Sequence[RequestImages], prompts: Sequence[str]) -> list[str]:
        _check_requests(images, prompts)
        replies: list[str] = []
        for start in range(0, len(prompts), self.cfg.batch_size):
            batch_imgs = [request_images(r) for r in images[start : start + self.cfg.batch_size]]
            batch_prompts = prompts[start : start + self.cfg.batch_size]
            texts = [
                self.processor.apply_chat_template(
                    [
                        {
                            "role": "user",
                            "content": [
                                *({"type": "image"} for _ in imgs),
                                {"type": "text", "text": p},
                            ],
                        }
                    ],
                    add_generation_prompt=True,
                )
                for imgs, p in zip(batch_imgs, batch_prompts, strict=True)
            ]
            inputs = self.processor(
                text=texts, images=batch_imgs, return_tensors="pt", padding=True
            ).to(self.device)
            gen_kwargs = {
                "max_new_tokens": self.cfg.max_new_tokens,
                "do_sample": self.cfg.do_sample,
            }
            if self.cfg.do_sample:
                gen_kwargs["temperature"] = self.cfg.temperature
            t0 = time.perf_counter()
            out = self.model.generate(**inputs, **gen_kwargs)  # (B, prompt + new)
            new_tokens = out[:, inputs["input_ids"].shape[1] :]
            replies.extend(self.processor.batch_decode(new_tokens, skip_special_tokens=True))
            logger.debug(
                "VLM batch of %d: %d new tokens in %.2f s",
                len(texts),
                new_tokens.shape[1],
                time.perf_counter() - t0,
            )
        return replies


@dataclass
class HTTPVLMConfig:
    base_url: str = "http://127.0.0.1:8000/v1"  # vLLM / Ollama / hosted, OpenAI-compatible
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    api_key_env: str = "OPENAI_API_KEY"  # name of the env var; the key itself never in config
    max_tokens: int = 384
    temperature: float = 0.7
    timeout_s: float = 60.0
    max_retries: int = 2
    retry_backoff_s: float = 1.0  # wait before retry k (0-based): retry_backoff_s * 2**k, <= 10 s
    image_size_px: int = 448  # images are centre-cropped and resized before upload
    # Ask for a JSON object (``response_format: {"type": "json_object"}``; vLLM, llama.cpp's
    # server, Ollama and OpenAI support it). Off by default: not every server accepts it.
    json_mode: bool = False

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be > 0, got {self.max_tokens!r}")
        if not 0.0 < self.timeout_s < math.inf:
            raise ValueError(f"timeout_s must be > 0 and finite, got {self.timeout_s!r}")
        if not 0.0 <= self.temperature < math.inf:
            raise ValueError(f"temperature must be >= 0 and finite, got {self.temperature!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        if not 0.0 <= self.retry_backoff_s < math.inf:
            raise ValueError(
                f"retry_backoff_s must be >= 0 and finite, got {self.retry_backoff_s!r}"
            )
        if self.image_size_px <= 0:
            raise ValueError(f"image_size_px must be > 0, got {self.image_size_px!r}")


def image_to_data_url(image_rgb: np.ndarray) -> str:
    """(H, W, 3) uint8 RGB -> ``data:image/png;base64,...``."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not PNG-encode an image of shape {image_rgb.shape!r}")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


class HTTPVLM:
    """Chat completions against an OpenAI-compatible server, one request per prompt (its
    images first, in order, then the text).

    The API key is read from the environment variable named in the config at each call
    and only ever placed in the Authorization header; it is never logged or stored.
    """

    name = "http"

    def __init__(self, cfg: HTTPVLMConfig) -> None:
        self.cfg = cfg
        self.name = f"http:{cfg.model}"

    def _request(self, images: RequestImages, prompt: str) -> str:
        parts = [
            {
                "type": "image_url",
                "image_url": {
                    "url": image_to_data_url(center_crop_resize(img, self.cfg.image_size_px))
                },
            }
            for img in request_images(images)
        ]
        body = {
            "model": self.cfg.model,
            "max_tokens": self.cfg.max_tokens,
            "temperature": self.cfg.temperature,
            "messages": [{"role": "user", "content": [*parts, {"type": "text", "text": prompt}]}],
        }
        if self.cfg.json_mode:
            body["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.cfg.base_url.rstrip("/") + "/chat/completions"
        last_error: Exception | None = None
        for attempt in range(self.cfg.max_retries + 1):
            req = urllib.request.Request(
                url, data=json.dumps(body).encode(), headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                    raw = resp.read().decode(errors="replace")
            except urllib.error.HTTPError as exc:
                # 4xx other than rate limiting will not get better by retrying.
                if exc.code < 500 and exc.code != 429:
                    raise RuntimeError(f"{url} answered HTTP {exc.code}: {exc.reason}") from None
                last_error = exc
            except (
                urllib.error.URLError,
                TimeoutError,
                ConnectionError,
                http.client.HTTPException,
            ) as exc:
                last_error = exc
            else:
                try:
                    return parse_chat_completion(json.loads(raw))
                except ValueError as exc:  # a malformed body will not get better either
                    raise RuntimeError(f"{url} answered an unusable body: {exc}") from None
            logger.warning("request to %s failed (attempt %d): %s", url, attempt + 1, last_error)
            if attempt < self.cfg.max_retries:
                time.sleep(min(self.cfg.retry_backoff_s * 2.0**attempt, 10.0))
        raise RuntimeError(f"{url} failed after {self.cfg.max_retries + 1} attempts: {last_error}")

    def generate(self, images: Sequence[RequestImages], prompts: Sequence[str]) -> list[str]:
        _check_requests(images, prompts)
        return [self._request(img, p) for img, p in zip(images, prompts, strict=True)]


def parse_chat_completion(payload: dict) -> str:
    """The assistant text of an OpenAI chat-completion response (string or content parts)."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"not a chat completion: {str(payload)[:200]!r}") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise ValueError(f"chat completion content is not text: {content!r}")
    return content
