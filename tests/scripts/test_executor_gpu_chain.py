"""The GPU chain: its config, demo reuse, and the text table (MiniLM embeddings carried
without MiniLM)."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import video_models.pipeline_executor as pe
from video_models.text_encoding import encode_text, load_minilm

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "executor_gpu_chain.py"


def _chain():
    spec = importlib.util.spec_from_file_location("executor_gpu_chain", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_config_rejects_bad_values() -> None:
    chain = _chain()
    with pytest.raises(ValueError, match="'gpu'"):
        chain.GpuChainConfig(stage="gpu")
    with pytest.raises(ValueError, match="demo_items"):
        chain.GpuChainConfig(demo_items=0)
    assert chain.GpuChainConfig(stage="distill").distill_init is None
    with pytest.raises(ValueError, match="demo_min_consistency must be in"):
        chain.GpuChainConfig(demo_min_consistency=1.5)


def test_judged_demos_are_reused_only_for_the_same_request(tmp_path: Path) -> None:
    chain = _chain()
    cache = tmp_path / "demos_prompt.npz"
    cache.write_bytes(b"stands in for a clip cache: reuse must not read it")
    stats = {"demo_items": 8, "demo_samples": 2, "demos": 16, "judged_successes": 11}
    (tmp_path / "demo_stats.json").write_text(json.dumps(stats))
    same = chain.GpuChainConfig(stage="distill", demo_items=8, demo_samples=2)
    assert chain.render_and_judge_demos(same, tmp_path) == cache
    other = chain.GpuChainConfig(stage="distill", demo_items=16, demo_samples=2)
    demonstrator = "'checkpoints/demonstrator_sim', 'solution'"
    with pytest.raises(
        ValueError,
        match=rf"\(8, 2, 'programmatic', 0.0, {demonstrator}\).*"
        rf"\(16, 2, 'programmatic', 0.0, {demonstrator}\)",
    ):
        chain.render_and_judge_demos(other, tmp_path)
    stricter = chain.GpuChainConfig(
        stage="distill", demo_items=8, demo_samples=2, demo_min_consistency=0.8
    )
    with pytest.raises(ValueError, match=r"\(8, 2, 'programmatic', 0.8, "):
        chain.render_and_judge_demos(stricter, tmp_path)
    # an Executor's own videos of the short prompt are other demos than the Demonstrator's
    own = chain.GpuChainConfig(
        stage="distill",
        demo_items=8,
        demo_samples=2,
        demo_model=Path("checkpoints/executor_sim"),
        demo_text="prompt",
    )
    with pytest.raises(ValueError, match=r"'checkpoints/executor_sim', 'prompt'\)"):
        chain.render_and_judge_demos(own, tmp_path)
    with pytest.raises(ValueError, match="demo_text must be 'solution' or 'prompt', got 'caption'"):
        chain.GpuChainConfig(demo_text="caption")
    with pytest.raises(ValueError, match="demo_execution_workers"):
        chain.GpuChainConfig(demo_execution_workers=0)


def test_text_table_round_trip_and_lookup(tmp_path: Path, monkeypatch) -> None:
    torch.set_num_threads(1)
    chain = _chain()
    texts = ["put the red cube in the bowl", "1. Open the gripper. 2. Lower it onto the cube."]
    chain.write_text_table(texts, tmp_path / "texts.npz")
    table = chain.load_text_table(tmp_path / "texts.npz")
    tokenizer, encoder = load_minilm()
    ref = encode_text(tokenizer, encoder, texts, 112).float()  # (2, 112, 384)
    for i, text in enumerate(texts):
        n = table[text].shape[0]
        assert 3 < n < 112
        assert torch.all(ref[i, n:] == 0)  # only padding was dropped
        err = (table[text] - ref[i, :n]).abs().max() / ref[i, :n].abs().max()
        assert err < 0.01

    # the lookup replaces MiniLM inside pipelines; restored after the test
    monkeypatch.setattr(
        pe.ExecutorVideoPipeline, "encode_prompt", pe.ExecutorVideoPipeline.encode_prompt
    )
    monkeypatch.setattr(pe, "load_minilm", pe.load_minilm)
    chain.install_text_table(table)
    assert pe.load_minilm() == (None, None)

    # test double of a pipeline: only what encode_prompt reads
    pipe = SimpleNamespace(
        config=SimpleNamespace(max_text_tokens=112),
        transformer=SimpleNamespace(dtype=torch.float32),
    )
    out = pe.ExecutorVideoPipeline.encode_prompt(pipe, texts[::-1], torch.device("cpu"))
    assert out.shape == (2, 112, 384)
    torch.testing.assert_close(out[0], ref[1], atol=0.02, rtol=0.02)
    with pytest.raises(KeyError, match="stack the blue cube"):
        pe.ExecutorVideoPipeline.encode_prompt(pipe, ["stack the blue cube"], None)


def test_extra_clips_are_distilled_beside_the_kept_demos(tmp_path: Path) -> None:
    chain = _chain()

    def cache(texts: list[str], n: int) -> chain.ClipCache:
        return chain.ClipCache(
            np.full((n, 2, 8, 8, 3), n, np.uint8),
            np.arange(n, dtype=np.int64),
            np.arange(n, dtype=np.int64) % len(texts),
            np.ones((len(texts), 4, 3), np.float16),
            texts,
            "prompt",
        )

    kept = chain.write_clip_cache(cache(["push the red cube"], 2), tmp_path / "kept.npz")
    extra = chain.write_clip_cache(
        cache(["push the red cube", "stack the cubes"], 3), tmp_path / "extra.npz"
    )
    plain = chain.GpuChainConfig(stage="distill")
    assert chain.with_extra_clips(plain, kept, tmp_path) == kept
    mixed_cfg = chain.GpuChainConfig(stage="distill", distill_extra_cache=extra)
    mixed = chain.load_clip_cache(chain.with_extra_clips(mixed_cfg, kept, tmp_path))
    assert len(mixed) == 5
    assert mixed.texts == ["push the red cube", "stack the cubes"]
    assert [int(f[0, 0, 0, 0]) for f in mixed.frames] == [2, 2, 3, 3, 3]
    assert len(set(mixed.episode_index.tolist())) == 5


def _items(folder: Path, colours: tuple[str, ...]) -> Path:
    from self_distillation.proposal_schema import TaskProposal
    from self_distillation.task_items import TaskItem, save_items

    items = []
    for i, colour in enumerate(colours):
        proposal = TaskProposal(
            f"put the {colour} cube in the bowl",
            (f"Grasp the {colour} cube.", "Release it over the bowl."),
            f"the {colour} cube rests in the bowl",
            source="test",
            metadata={"task_family": "pick_place", "object": colour, "target": "bowl"},
        )
        image = np.full((8, 8, 3), 10 * i, np.uint8)
        items.append(TaskItem(f"img{i}-0", f"img{i}", image, proposal))
    save_items(items, folder)
    return folder


def test_pack_keeps_the_first_items_and_only_their_texts(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    chain = _chain()
    train = _items(tmp_path / "train", ("red", "green", "blue"))
    heldout = _items(tmp_path / "heldout", ("yellow",))
    cfg = chain.GpuChainConfig(proposals=train, heldout=heldout, pack_dir=tmp_path / "pack")
    chain.stage_pack(replace(cfg, pack_items=2))
    packed = chain.load_items(tmp_path / "pack" / "proposals")
    assert [it.item_id for it in packed] == ["img0-0", "img1-0"]
    table = chain.load_text_table(tmp_path / "pack" / "texts.npz")
    assert "put the green cube in the bowl" in table
    assert "put the yellow cube in the bowl" in table  # held-out items are all kept
    assert "put the blue cube in the bowl" not in table
    with pytest.raises(ValueError, match="pack_items 4 > the 3 items"):
        chain.stage_pack(replace(cfg, pack_dir=tmp_path / "pack4", pack_items=4))
    assert not (tmp_path / "pack4").exists()  # nothing half-written
    with pytest.raises(ValueError, match="pack_items must be > 0 or None, got 0"):
        chain.GpuChainConfig(pack_items=0)


def test_grpo_variants_reach_the_trainer(tmp_path: Path, monkeypatch) -> None:
    """The chain's GRPO flags become the trainer's config: the anchor is the Demonstrator,
    the executed reward's weight and workers, the budget, one noise per group."""
    chain = _chain()
    seen = []
    monkeypatch.setattr(chain, "train_grpo", lambda cfg: seen.append(cfg) or tmp_path)
    cfg = chain.GpuChainConfig(
        stage="grpo",
        demonstrator=Path("checkpoints/demonstrator_sim"),
        grpo_judge="executed",
        grpo_executed_weight=1.0,
        grpo_execution_workers=6,
        grpo_anchor_beta=0.01,
        grpo_minutes=4.5,
        grpo_kl_beta=0.02,
        grpo_minibatches=2,
        grpo_name="rl_anchor",
        grpo_items=64,
    )
    chain.grpo(cfg, Path("checkpoints/executor_sim"), tmp_path)
    (g,) = seen
    assert g.anchor_beta == 0.01
    assert g.anchor_pipeline == Path("checkpoints/demonstrator_sim")
    assert g.judge.kind == "executed"
    assert g.judge.executed.executed_weight == 1.0
    assert g.judge.executed.execution.workers == 6
    assert (g.max_minutes, g.kl_beta, g.minibatches_per_step) == (4.5, 0.02, 2)
    assert g.shared_group_noise
    assert g.output_dir == tmp_path / "rl_anchor"
    assert g.limit_items == 64
    assert g.init_pipeline == Path("checkpoints/executor_sim")
    chain.grpo(replace(cfg, grpo_anchor_beta=0.0, grpo_policy_weight=1.0), Path("x"), tmp_path)
    assert seen[1].anchor_pipeline is None
    with pytest.raises(ValueError, match="grpo_execution_workers must be > 0, got 0"):
        chain.GpuChainConfig(grpo_execution_workers=0)


def test_sft_budget_reaches_the_trainer(tmp_path: Path, monkeypatch) -> None:
    """--sft_steps fixes the SFT run's steps and --sft_minutes caps its wall clock (0: no
    cap); the distillation keeps its own time budget."""
    chain = _chain()
    seen = []
    monkeypatch.setattr(chain, "train", lambda cfg: seen.append(cfg) or tmp_path)
    cfg = chain.GpuChainConfig(stage="sft", distill_batch_size=128, sft_minutes=5.5)
    cache = tmp_path / "expert_prompt.npz"
    chain.distill(cfg, cache, tmp_path, "executor_sft", max_steps=3180, max_minutes=5.5)
    chain.distill(cfg, cache, tmp_path, "executor_sft", max_steps=200)
    chain.distill(replace(cfg, distill_minutes=2.0), cache, tmp_path)
    capped, uncapped, distilled = seen
    assert (capped.max_steps, capped.max_minutes, capped.batch_size) == (3180, 5.5, 128)
    assert capped.output_dir == tmp_path / "executor_sft"
    assert capped.init_from == Path("checkpoints/demonstrator_sim")
    assert (uncapped.max_steps, uncapped.max_minutes) == (200, 0.0)
    assert distilled.max_minutes == 2.0
    assert distilled.output_dir == tmp_path / "executor_distilled"
    with pytest.raises(ValueError, match=r"sft_minutes must be >= 0, got -1\.0"):
        chain.GpuChainConfig(sft_minutes=-1.0)


def test_a_patch_size_trains_that_shape_from_random_weights(tmp_path: Path, monkeypatch) -> None:
    """--sft_patch_size (issue 14's shape race): the model gets that patch size and no
    initial weights; without it the SFT baseline fine-tunes the Demonstrator."""
    chain = _chain()
    seen = []
    monkeypatch.setattr(chain, "train", lambda cfg: seen.append(cfg) or tmp_path)
    cfg = chain.GpuChainConfig(stage="sft", sft_patch_size=(4, 8, 8))
    cache = tmp_path / "expert_prompt.npz"
    chain.distill(cfg, cache, tmp_path, "executor_sft", max_steps=9, patch_size=(4, 8, 8))
    chain.distill(cfg, cache, tmp_path, "executor_sft", max_steps=9)
    scratch, baseline = seen
    assert scratch.init_from is None
    assert scratch.model.transformer.patch_size == (4, 8, 8)
    assert scratch.model.guidance_scale == baseline.model.guidance_scale  # the same sampler
    assert baseline.init_from == Path("checkpoints/demonstrator_sim")
    assert baseline.model.transformer.patch_size == (2, 8, 8)
    with pytest.raises(ValueError, match=r"sft_patch_size must be 3 positive sizes.*\(4, 8\)"):
        chain.GpuChainConfig(sft_patch_size=(4, 8))
    with pytest.raises(ValueError, match=r"size_px 64 is not a multiple of patch_size \(2, 7, 7\)"):
        chain.GpuChainConfig(sft_patch_size=(2, 7, 7))


def test_sft_windows_are_one_episode_each_and_named_in_the_cache(tmp_path: Path) -> None:
    """--sft_windows: an item's clips share its episode (the held-out split keeps them
    together), the cache's name says how many windows, and a bad count is named."""
    chain = _chain()
    texts = ["put the red cube in the bowl", "put the blue cube in the bowl"]
    chain.write_text_table(texts, tmp_path / "texts.npz")
    cfg = chain.GpuChainConfig(stage="sft", pack_dir=tmp_path, sft_windows=2)
    items = [SimpleNamespace(item_id=f"img{i // 2}-0", prompt=texts[i // 2]) for i in range(4)]
    clips = [np.full((2, 8, 8, 3), i, np.uint8) for i in range(4)]
    cache = chain.prompt_clip_cache(cfg, clips, items, 112)
    assert cache.episode_index.tolist() == [0, 0, 1, 1]
    assert cache.text_id.tolist() == [0, 0, 1, 1]
    for windows, name in ((1, "expert_prompt.npz"), (4, "expert_prompt_w4.npz")):
        (tmp_path / str(windows)).mkdir()
        (tmp_path / str(windows) / name).write_bytes(b"")  # present: reused, not rendered
        done = chain.expert_clip_cache(replace(cfg, sft_windows=windows), tmp_path / str(windows))
        assert done == tmp_path / str(windows) / name
    with pytest.raises(ValueError, match=r"sft_windows must be >= 1, got 0"):
        chain.GpuChainConfig(sft_windows=0)


def test_sft_off_still_frames_marks_the_cache_and_renders_an_unmarked_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--sft_loss_on_still_frames false: the cache carries each clip's frames of motion, a
    cache written without them is rendered again, and the trainer is told."""
    chain = _chain()
    texts = ["put the red cube in the bowl"]
    chain.write_text_table(texts, tmp_path / "texts.npz")
    cfg = chain.GpuChainConfig(
        stage="sft", pack_dir=tmp_path, sft_windows=2, sft_loss_on_still_frames=False
    )
    items = [SimpleNamespace(item_id="img0-0", prompt=texts[0])] * 2
    clips = [np.full((3, 8, 8, 3), i, np.uint8) for i in range(2)]
    unmarked = chain.prompt_clip_cache(cfg, clips, items, 112)
    assert unmarked.valid_frames is None
    out = tmp_path / "run"
    out.mkdir()
    chain.write_clip_cache(unmarked, out / "expert_prompt_w2.npz")
    rendered = []

    def fake_expert_clips(its, num_frames, frame_stride, size_px, windows):
        rendered.append(windows)  # the simulator's expert, stood in for: no scenes here
        return clips, [3, 1], items

    monkeypatch.setattr(chain, "expert_clips", fake_expert_clips)
    monkeypatch.setattr(chain, "load_items", lambda path, limit: items)
    path = chain.expert_clip_cache(cfg, out)
    assert rendered == [2]
    assert chain.load_clip_cache(path).valid_frames.tolist() == [3, 1]
    assert chain.expert_clip_cache(cfg, out) == path
    assert rendered == [2]
    seen = {}
    monkeypatch.setattr(chain, "train", lambda train_cfg: seen.setdefault("cfg", train_cfg))
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "model_index.json").write_text("{}")
    chain.distill(
        replace(cfg, demonstrator=tmp_path / "demo"),
        path,
        out,
        "executor_sft",
        2,
        0.0,
        loss_on_still_frames=False,
    )
    assert seen["cfg"].loss_on_still_frames is False
