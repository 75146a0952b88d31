"""LTX-2, HunyuanVideo-1.5 and Wan2.1-I2V through the one shared pipeline, trainer and GRPO.

Tiny random components in diffusers layout (``tiny_backbones.py``) are loaded through the
real local-path loader. Per backbone: sampling, 2 distillation steps then resume, 2 GRPO
steps with the anchor loss, the LoRA save/load round trip, refusal of pickles.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_backbones import WRITERS, tiny_cfg, write_tiny_cache

from executor_core.frames import center_crop_resize
from executor_core.train_state import latest_checkpoint
from self_distillation.grpo_trainer import GRPOConfig, PolicyAndReference, grpo_step
from self_distillation.judges.base import JudgeVerdict
from self_distillation.proposal_schema import TaskProposal
from self_distillation.task_items import TaskItem
from video_models import backbones
from video_models.backbones import ImageCondition
from video_models.configuration_executor import MODEL_PRESETS
from video_models.modeling_executor import load_pretrained_pipeline, save_lora
from video_models.train_executor import RAW_WEIGHTS, DataConfig, TrainConfig, train

BACKBONES = ["ltx2", "hunyuanvideo15", "wan"]
PROMPT = "put the red cube in the bowl"


@pytest.fixture(scope="module", params=BACKBONES)
def tiny(request, tmp_path_factory) -> tuple[str, Path]:
    backbone = request.param
    root = tmp_path_factory.mktemp(backbone) / f"tiny-{backbone}"
    return backbone, WRITERS[backbone](root)


def _load(backbone: str, root: Path, **kw):
    pipe = load_pretrained_pipeline(tiny_cfg(backbone), root, device="cpu", **kw)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (40, 56, 3), dtype=np.uint8)


def test_real_scale_presets_name_their_backbone():
    assert MODEL_PRESETS["ltx2-i2v"].backbone == "ltx2"
    assert MODEL_PRESETS["ltx2-i2v"].num_inference_steps == 8
    assert MODEL_PRESETS["hunyuanvideo15-i2v"].backbone == "hunyuanvideo15"
    assert MODEL_PRESETS["hunyuanvideo15-i2v"].num_inference_steps == 25
    for name in ("ltx2-i2v", "hunyuanvideo15-i2v"):
        cfg = MODEL_PRESETS[name]
        assert (cfg.dtype, cfg.space, cfg.lora.rank > 0) == ("bfloat16", "latent", True)
        assert cfg.cpu_offload
        assert cfg.vae_tiling
        assert cfg.gradient_checkpointing
    with pytest.raises(ValueError, match="'ltx3'"):
        replace(MODEL_PRESETS["ltx2-i2v"], backbone="ltx3")
    with pytest.raises(ValueError, match="latent"):
        replace(MODEL_PRESETS["sim"], backbone="ltx2")
    with pytest.raises(ValueError, match="'sim' is not a real-scale LoRA preset"):
        TrainConfig(fsdp=True)
    with pytest.raises(ValueError, match=r"anchor_beta must be >= 0, got -0\.1"):
        GRPOConfig(anchor_beta=-0.1)


def test_sampling(tiny):
    backbone, root = tiny
    pipe = _load(backbone, root)
    assert pipe.config.get("backbone", "wan") == backbone
    trainable = [n for n, p in pipe.transformer.named_parameters() if p.requires_grad]
    assert trainable
    assert all("lora_" in n for n in trainable)
    cfg = tiny_cfg(backbone)
    frames = pipe(_image(), PROMPT, seed=0).frames
    assert frames.shape == (1, cfg.num_frames, cfg.size_px, cfg.size_px, 3)
    np.testing.assert_array_equal(frames, pipe(_image(), PROMPT, seed=0).frames)
    np.testing.assert_array_equal(frames[0, 0], center_crop_resize(_image(), cfg.size_px))
    assert not np.array_equal(frames, pipe(_image(), PROMPT, seed=1).frames)
    guided = pipe([_image(), _image(1)], PROMPT, seed=0, guidance_scale=3.0).frames
    assert guided.shape == (2, *frames.shape[1:])
    # The text reaches the transformer: another prompt, another velocity.
    emb = pipe.encode_prompt([PROMPT, "stack the blue cube on the green cube"], pipe.device)
    assert emb.shape[0] == 2
    assert torch.isfinite(emb).all()
    first = torch.zeros(2, 3, cfg.size_px, cfg.size_px)
    cond = pipe.prepare_condition(first, cfg.num_frames)
    x = torch.randn(pipe.latent_shape(2, cfg.num_frames, cfg.size_px))
    v = pipe.predict_velocity(x, cond, torch.tensor(700.0), emb)
    assert v.shape == x.shape
    assert torch.isfinite(v).all()
    assert not torch.allclose(v[0, :, 1:], v[1, :, 1:])


def test_ltx2_keeps_the_first_latent_frame_clean(tmp_path: Path):
    root = WRITERS["ltx2"](tmp_path / "ltx2")
    pipe = _load("ltx2", root)
    cfg = tiny_cfg("ltx2")
    first = torch.rand(1, 3, cfg.size_px, cfg.size_px) * 2 - 1
    cond = pipe.prepare_condition(first, cfg.num_frames)
    emb = pipe.encode_prompt([PROMPT], pipe.device)
    x = torch.randn(pipe.latent_shape(1, cfg.num_frames, cfg.size_px))
    sigma = 0.6
    v = pipe.predict_velocity(x, cond, torch.tensor(1000.0 * sigma), emb)
    # One Euler step to sigma 0 lands the replaced frame on the image latent.
    torch.testing.assert_close(x[:, :, :1] - sigma * v[:, :, :1], cond, atol=1e-5, rtol=1e-5)


def test_hunyuan_condition_carries_siglip_states(tmp_path: Path):
    root = WRITERS["hunyuanvideo15"](tmp_path / "hy")
    pipe = _load("hunyuanvideo15", root)
    cfg = tiny_cfg("hunyuanvideo15")
    cond = pipe.prepare_condition(torch.zeros(3, 3, 32, 32), cfg.num_frames)
    assert isinstance(cond, ImageCondition)
    assert cond.image_embeds.shape[0] == 3
    assert cond.image_embeds.abs().sum() > 0
    assert cond[1:].latents.shape[0] == 2
    # The mask channel marks latent frame 0 only.
    assert cond.latents[:, -1, 0].eq(1).all()
    assert cond.latents[:, -1, 1:].eq(0).all()
    # Quoted text goes through the byT5 glyph encoder, packed after the Qwen rows.
    plain, glyph = pipe.encode_prompt([PROMPT, 'put the "red" cube in the bowl'], pipe.device)
    assert plain[cfg.max_text_tokens :].abs().sum() == 0
    assert glyph[cfg.max_text_tokens :].abs().sum() > 0


def test_hunyuan_glyph_text_over_its_window_is_refused_not_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = _load("hunyuanvideo15", WRITERS["hunyuanvideo15"](tmp_path / "hy"))
    monkeypatch.setattr(backbones, "HUNYUAN_GLYPH_TOKENS", 2)  # the real window: 256 bytes
    with pytest.raises(ValueError, match=r"tokens long .* limit of max_tokens 2"):
        pipe.encode_prompt(['put the "red" cube in the bowl'], pipe.device)


def _train_cfg(backbone: str, cache: Path, out: Path, **kw) -> TrainConfig:
    return TrainConfig(
        model=tiny_cfg(backbone),
        data=DataConfig(cache_path=cache, heldout_fraction=0.0),
        output_dir=out,
        max_steps=2,
        batch_size=2,
        warmup_steps=0,
        learning_rate=1e-2,
        checkpoint_every=1,
        sample_every=100,
        **kw,
    )


def test_two_distillation_steps_then_resume(tiny, tmp_path: Path):
    backbone, root = tiny
    cache = write_tiny_cache(_load(backbone, root), backbone, tmp_path / "clips.npz")
    base = replace(tiny_cfg(backbone), pretrained_path=root)

    def cfg(out: Path, **kw) -> TrainConfig:
        return replace(_train_cfg(backbone, cache, out, **kw), model=base)

    straight = train(cfg(tmp_path / "a"))
    train(cfg(tmp_path / "b", stop_at_step=1))
    assert latest_checkpoint(tmp_path / "b").name == "step_000001"
    resumed = train(cfg(tmp_path / "b"))
    a = load_file(latest_checkpoint(tmp_path / "a") / RAW_WEIGHTS)
    b = load_file(latest_checkpoint(tmp_path / "b") / RAW_WEIGHTS)
    assert a
    assert all("lora_" in k for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    # The exported Executor is an adapter for the base folder; it loads and has learned.
    info = json.loads((straight / "executor_lora.json").read_text())
    assert info["preset"] == base.name
    assert (resumed / "executor_lora.json").is_file()
    trained = _load(backbone, root, lora_path=straight)
    fresh = _load(backbone, root)
    assert not np.array_equal(
        trained(_image(), PROMPT, seed=0).frames, fresh(_image(), PROMPT, seed=0).frames
    )
    assert sorted((tmp_path / "a" / "samples").glob("*.png"))


class BrightnessJudgeDouble:
    """Test double of a video judge: rewards a bright last frame."""

    def judge(self, frames: np.ndarray, episode: dict) -> JudgeVerdict:
        score = float(frames[-1].mean() / 255.0)
        return JudgeVerdict(score > 0.6, score, "brightness")


def _items() -> list[TaskItem]:
    proposal = TaskProposal(
        PROMPT,
        ("Grasp the red cube.", "Carry it over the bowl.", "Release it."),
        "the red cube rests in the bowl",
        source="test",
        metadata={"task_family": "pick_place", "object": "red", "target": "bowl"},
    )
    return [TaskItem("img0-0", "img0", _image(), proposal)]


def test_two_grpo_steps_with_the_anchor_loss(tiny, tmp_path: Path):
    backbone, root = tiny
    pipe = _load(backbone, root)
    demonstrator = _load(backbone, root)  # the frozen anchor, made to differ from the policy
    with torch.no_grad():
        for name, p in demonstrator.transformer.named_parameters():
            if "lora_B" in name:
                p.add_(0.05 * torch.randn_like(p))
    demonstrator.transformer.requires_grad_(False)
    cfg = GRPOConfig(
        output_dir=tmp_path,
        num_steps=2,
        prompts_per_step=1,
        group_size=2,
        micro_batch_size=2,
        num_inference_steps=3,
        lora_rank=4,
        learning_rate=1e-2,
        clip_range=0.2,
        anchor_beta=0.5,
        device="cpu",
    )
    policy = PolicyAndReference(pipe, cfg)
    before = _trainable(pipe)
    opt = torch.optim.AdamW(policy.trainable(), lr=cfg.learning_rate)
    records = [
        grpo_step(policy, BrightnessJudgeDouble(), _items(), cfg, step, opt, demonstrator)
        for step in range(2)
    ]
    for record in records:
        assert record["anchor"] > 0
        assert np.isfinite(record["anchor"])
        assert np.isfinite(record["policy_loss"])
        assert np.isfinite(record["kl"])
    after = _trainable(pipe)
    assert max(float((after[n] - before[n]).abs().max()) for n in before) > 0
    # The anchor term is in the update: the same step without it moves the weights elsewhere.
    plain = _load(backbone, root)
    policy = PolicyAndReference(plain, replace(cfg, anchor_beta=0.0))
    opt = torch.optim.AdamW(policy.trainable(), lr=cfg.learning_rate)
    for step in range(2):
        grpo_step(policy, BrightnessJudgeDouble(), _items(), cfg, step, opt, None)
    without = _trainable(plain)
    assert max(float((after[n] - without[n]).abs().max()) for n in after) > 1e-6


def _trainable(pipe) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().clone() for n, p in pipe.transformer.named_parameters() if p.requires_grad
    }


def test_lora_save_load_round_trip(tiny, tmp_path: Path):
    backbone, root = tiny
    pipe = _load(backbone, root)
    base = pipe(_image(), PROMPT, seed=0).frames
    with torch.no_grad():
        for name, p in pipe.transformer.named_parameters():
            if "lora_B" in name:
                p.add_(0.1 * torch.randn_like(p))
    tuned = pipe(_image(), PROMPT, seed=0).frames
    assert not np.array_equal(base, tuned)
    folder = save_lora(pipe.transformer, tmp_path / "adapter", tiny_cfg(backbone))
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".safetensors"]
    again = _load(backbone, root, lora_path=folder)
    np.testing.assert_array_equal(again(_image(), PROMPT, seed=0).frames, tuned)
    trainable = [n for n, p in again.transformer.named_parameters() if p.requires_grad]
    assert trainable
    assert all("lora_" in n for n in trainable)


def test_pickles_are_refused(tiny, tmp_path: Path):
    backbone, root = tiny
    bad = tmp_path / "pickled"
    shutil.copytree(root, bad)
    for f in (bad / "transformer").glob("*.safetensors"):
        f.unlink()
    torch.save({}, bad / "transformer" / "diffusion_pytorch_model.bin")
    with pytest.raises(ValueError, match=r"diffusion_pytorch_model\.bin .*pickled weights"):
        load_pretrained_pipeline(tiny_cfg(backbone), bad)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    torch.save({}, adapter / "pytorch_lora_weights.bin")
    with pytest.raises(ValueError, match="pickled weights are refused"):
        load_pretrained_pipeline(tiny_cfg(backbone), root, lora_path=adapter)
    with pytest.raises(FileNotFoundError, match="no hub"):
        load_pretrained_pipeline(tiny_cfg(backbone), tmp_path / "missing")


def test_hunyuan_chat_template_prefix_is_cropped():
    from video_models.backbones import _chat_wrap, hunyuan_system_message
    from video_models.text_encoding import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    # A template of words the tiny vocabulary knows (the system message maps to [UNK]).
    tok.chat_template = (
        "{% for m in messages %}the {{ m.content }} then {% endfor %}"
        "{% if add_generation_prompt %}arm{% endif %}"
    )
    assert hunyuan_system_message().startswith("You are a helpful assistant.")
    texts, crop = _chat_wrap(tok, [PROMPT])
    ids = tok(texts[0], add_special_tokens=False)["input_ids"]
    assert tok.decode(ids[crop : crop + len(PROMPT.split())]) == PROMPT


def test_gradient_checkpointing_reaches_the_adapter(tiny):
    from video_models.train_executor import flow_matching_loss

    backbone, root = tiny
    cfg = tiny_cfg(backbone, gradient_checkpointing=True)
    pipe = load_pretrained_pipeline(cfg, root, device="cpu")
    assert pipe.transformer.is_gradient_checkpointing
    pipe.transformer.train()
    clips = torch.rand(2, 3, cfg.num_frames, cfg.size_px, cfg.size_px) * 2 - 1
    text = pipe.encode_prompt([PROMPT, PROMPT], pipe.device)
    noise = torch.randn(pipe.latent_shape(2, cfg.num_frames, cfg.size_px))
    loss = flow_matching_loss(pipe, pipe.transformer, clips, text, torch.tensor([0.3, 0.9]), noise)
    loss.backward()
    named = {n: p.grad for n, p in pipe.transformer.named_parameters() if p.requires_grad}
    assert named
    # Every adapter weight trains (LTX-2's adapter skips the cut-off audio stream), so DDP
    # finds no unused parameter.
    assert all(g is not None for g in named.values()), [n for n, g in named.items() if g is None]
    assert max(float(g.abs().max()) for g in named.values()) > 0
    if backbone == "ltx2":
        assert not [n for n in named if "audio" in n]


def test_grpo_cli_path_trains_a_lora_export_with_the_anchor(tmp_path: Path, monkeypatch):
    """``train_grpo`` from LoRA exports (policy and anchor) to an exported adapter."""
    from self_distillation.grpo_trainer import train_grpo
    from self_distillation.task_items import save_items

    root = WRITERS["ltx2"](tmp_path / "base")
    monkeypatch.setitem(MODEL_PRESETS, "ltx2-i2v", tiny_cfg("ltx2"))
    executor = save_lora(_load("ltx2", root).transformer, tmp_path / "executor", tiny_cfg("ltx2"))
    demo = _load("ltx2", root)
    with torch.no_grad():
        for name, p in demo.transformer.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    demonstrator = save_lora(demo.transformer, tmp_path / "demonstrator", tiny_cfg("ltx2"))
    for folder in (executor, demonstrator):  # exports name the base they were trained on
        info = json.loads((folder / "executor_lora.json").read_text())
        info["pretrained_path"] = str(root)
        (folder / "executor_lora.json").write_text(json.dumps(info))
    save_items(_items(), tmp_path / "items")
    cfg = GRPOConfig(
        items=tmp_path / "items",
        output_dir=tmp_path / "grpo",
        init_pipeline=executor,
        anchor_pipeline=demonstrator,
        anchor_beta=0.5,
        num_steps=2,
        prompts_per_step=1,
        group_size=2,
        micro_batch_size=2,
        num_inference_steps=3,
        save_every=1,
        learning_rate=1e-2,
        device="cpu",
    )
    final = train_grpo(cfg, judge=BrightnessJudgeDouble())
    rows = [json.loads(x) for x in (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["anchor"] > 0 for r in rows)
    assert (final / "executor_lora.json").is_file()  # the adapter, not a fused 14B copy
    assert not (final / "model_index.json").exists()
    trained = _load("ltx2", root, lora_path=final)
    assert not np.array_equal(
        trained(_image(), PROMPT, seed=0).frames,
        _load("ltx2", root)(_image(), PROMPT, seed=0).frames,
    )
