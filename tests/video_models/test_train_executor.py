"""The video trainer: clip cache from a LeRobotDataset, debug run + resume, 2-process DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from video_models.clips_executor import (
    ClipCache,
    build_clip_cache,
    clip_frame_indices,
    clip_valid_frames,
    load_clip_cache,
    merge_clip_caches,
    split_episodes,
    write_clip_cache,
)
from video_models.pipeline_executor import ExecutorVideoPipeline
from video_models.text_encoding import build_tiny_text_encoder, build_tiny_tokenizer, encode_text
from video_models.train_executor import (
    PRESETS,
    TrainConfig,
    build_training_pipeline,
    flow_matching_loss,
    main,
    train,
    valid_frame_mask,
)

sys.path.insert(0, str(Path(__file__).parent))
from lerobot_fixture import SIZE_PX, make_tiny_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("lerobot") / "tiny_video")


def _embed(texts: list[str]):
    return encode_text(build_tiny_tokenizer(), build_tiny_text_encoder(16), texts, 16)


def _square_column(frame: np.ndarray, color: tuple[int, int, int]) -> int:
    dist = np.abs(frame[8].astype(int) - np.array(color)).sum(-1)  # row 8 crosses the square
    return int(np.argmin(dist))


def test_clip_frame_indices_pad_short_episodes():
    assert clip_frame_indices(20, 4, 4) == [0, 4, 8, 12]
    assert clip_frame_indices(6, 4, 4) == [0, 4, 5, 5]
    with pytest.raises(ValueError, match="episode_length"):
        clip_frame_indices(0, 4, 4)


def test_clip_valid_frames_count_the_frames_before_the_padding():
    assert clip_valid_frames(20, 4, 4) == 4
    assert clip_valid_frames(6, 4, 4) == 2  # steps 0, 4 real; 5, 5 repeat the last step
    assert clip_valid_frames(1, 4, 4) == 1
    with pytest.raises(ValueError, match="episode_length"):
        clip_valid_frames(0, 4, 4)


def _cache(n: int, valid: list[int] | None) -> ClipCache:
    return ClipCache(
        frames=np.zeros((n, 4, 8, 8, 3), np.uint8),
        episode_index=np.arange(n, dtype=np.int64),
        text_id=np.zeros(n, dtype=np.int64),
        text_embeds=np.zeros((1, 2, 3), np.float16),
        texts=["push"],
        text_field="prompt",
        valid_frames=None if valid is None else np.asarray(valid, dtype=np.int64),
    )


def test_clip_cache_keeps_which_frames_are_padding(tmp_path: Path):
    cache = _cache(3, [4, 2, 1])
    again = load_clip_cache(write_clip_cache(cache, tmp_path / "v.npz", compact=True))
    np.testing.assert_array_equal(again.valid_frames, [4, 2, 1])
    np.testing.assert_array_equal(cache.subset({1, 2}).valid_frames, [2, 1])
    assert (
        load_clip_cache(write_clip_cache(_cache(2, None), tmp_path / "n.npz")).valid_frames is None
    )
    merged = merge_clip_caches([_cache(2, None), cache])  # unmarked clips: every frame real
    np.testing.assert_array_equal(merged.valid_frames, [4, 4, 4, 2, 1])
    assert merge_clip_caches([_cache(2, None), _cache(1, None)]).valid_frames is None
    with pytest.raises(ValueError, match=r"valid_frames must be in \[1, 4\], got \[0, 4\]"):
        _cache(2, [4, 0])
    with pytest.raises(ValueError, match=r"valid_frames \(3,\) must be \(2,\)"):
        _cache(2, [4, 4, 4])


def test_valid_frame_mask_maps_clip_frames_to_flow_frames():
    mask = valid_frame_mask(torch.tensor([9, 4, 1]), num_frames=9, flow_frames=9)
    assert mask.sum(1).tolist() == [9, 4, 1]
    # a latent frame of 3 clip frames is real when its first one is
    mask = valid_frame_mask(torch.tensor([9, 4, 3, 1]), num_frames=9, flow_frames=3)
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0]]


def test_frames_past_valid_are_left_out_of_the_loss():
    torch.manual_seed(0)
    pipe = build_training_pipeline(PRESETS["debug"])
    model = PRESETS["debug"].model
    clips = torch.rand(2, 3, model.num_frames, model.size_px, model.size_px) * 2 - 1
    text = torch.randn(2, model.max_text_tokens, model.text_dim)
    sig = torch.tensor([0.3, 0.8])
    noise = torch.randn(pipe.latent_shape(2, model.num_frames, model.size_px))
    every = torch.tensor([model.num_frames, model.num_frames])
    valid = torch.tensor([model.num_frames, 2])
    with torch.no_grad():
        plain = flow_matching_loss(pipe, pipe.transformer, clips, text, sig, noise)
        all_real = flow_matching_loss(pipe, pipe.transformer, clips, text, sig, noise, every)
        masked = flow_matching_loss(pipe, pipe.transformer, clips, text, sig, noise, valid)
        torch.testing.assert_close(all_real, plain)
        # the second clip's padding changes: the masked loss does not see it
        noise2 = noise.clone()
        noise2[1, :, 2:] += 3.0
        moved = flow_matching_loss(pipe, pipe.transformer, clips, text, sig, noise2)
        masked2 = flow_matching_loss(pipe, pipe.transformer, clips, text, sig, noise2, valid)
    assert float((moved - plain).abs()) > 1e-3
    assert float((masked2 - masked).abs()) < 1e-3 * float(masked)


def test_split_is_deterministic_and_disjoint():
    a = split_episodes(list(range(50)), 0.2, seed=1)
    assert a == split_episodes(list(range(50)), 0.2, seed=1)
    assert len(a[1]) == 10
    assert not set(a[0]) & set(a[1])
    with pytest.raises(ValueError, match=r"1\.5"):
        split_episodes([1], 1.5)


def test_clip_cache_from_lerobot_dataset(tiny_dataset: Path, tmp_path: Path):
    cache = build_clip_cache(
        tiny_dataset, "solution", num_frames=4, frame_stride=2, size_px=SIZE_PX, embed_texts=_embed
    )
    assert cache.frames.shape == (3, 4, SIZE_PX, SIZE_PX, 3)
    # Frame k of an episode is dataset step k * stride (the square moves 1 px per step);
    # episode 1 has 5 steps, so its clip is padded with the last step.
    assert [_square_column(f, (220, 30, 30)) for f in cache.frames[0]] == [0, 2, 4, 6]
    assert [_square_column(f, (30, 60, 220)) for f in cache.frames[1]] == [0, 2, 4, 4]
    assert cache.valid_frames[:2].tolist() == [4, 3]  # episode 1's last frame is padding
    assert cache.texts[0].startswith("1. step one of put the red cube")
    path = write_clip_cache(cache, tmp_path / "c.npz")
    again = load_clip_cache(path)
    np.testing.assert_array_equal(again.frames, cache.frames)
    np.testing.assert_array_equal(again.valid_frames, cache.valid_frames)
    assert again.texts == cache.texts
    assert again.text_field == "solution"
    prompts = build_clip_cache(tiny_dataset, "prompt", 4, 2, SIZE_PX, _embed)
    assert prompts.texts[1] == "push the blue cube onto the cyan mat"


def _debug_cfg(tiny_dataset: Path, out: Path, cache: Path, **kw) -> TrainConfig:
    cfg = PRESETS["debug"]
    data = replace(cfg.data, dataset_roots=(tiny_dataset,), cache_path=cache)
    return replace(cfg, output_dir=out, data=data, **kw)


def test_debug_training_runs_and_resumes_exactly(tiny_dataset: Path, tmp_path: Path):
    cache = tmp_path / "clips.npz"
    # Uninterrupted 4 steps.
    straight = train(_debug_cfg(tiny_dataset, tmp_path / "a", cache, max_steps=4))
    # 2 steps, "preempted", then resumed to 4 by the CLI (same command, resume is automatic).
    train(_debug_cfg(tiny_dataset, tmp_path / "b", cache, max_steps=4, stop_at_step=2))
    ckpt = tmp_path / "b" / "checkpoints" / "step_000002"
    state = json.loads((ckpt / "training_state.json").read_text())
    assert state["step"] == 2
    assert state["samples_per_rank"] == [4]
    assert np.isfinite(state["loss"])
    assert not [p for p in ckpt.rglob("*") if p.suffix in (".bin", ".pt", ".pkl")]
    assert json.loads((ckpt / "train_config.json").read_text())["stop_at_step"] == 2
    init = load_file(ckpt / "transformer_raw.safetensors")
    main(
        [
            "--preset",
            "debug",
            f"--output_dir={tmp_path / 'b'}",
            f"--data.cache_path={cache}",
            "--max_steps=4",
        ]
    )
    state = json.loads(
        (tmp_path / "b" / "checkpoints" / "step_000004" / "training_state.json").read_text()
    )
    assert state["step"] == 4
    assert state["samples_per_rank"] == [8]
    a = load_file(tmp_path / "a" / "checkpoints" / "step_000004" / "transformer_raw.safetensors")
    b = load_file(tmp_path / "b" / "checkpoints" / "step_000004" / "transformer_raw.safetensors")
    for name in a:
        np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=1e-5, atol=1e-6)
    assert any((a[n] - init[n]).abs().max() > 0 for n in a)  # training moved the weights
    # keep_checkpoints=2: older checkpoints are pruned, no temporaries are left behind.
    kept = sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir())
    assert kept == ["step_000003", "step_000004"]
    # The exported pipeline loads and samples; sample strips were written.
    pipe = ExecutorVideoPipeline.from_pretrained(straight)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(np.zeros((32, 32, 3), np.uint8), "put the red cube in the bowl").frames
    assert frames.shape == (1, 4, 16, 16, 3)
    assert list((tmp_path / "a" / "samples").glob("step-000004-*.png"))


def test_time_budget_counts_the_time_trained_before_a_resume(tiny_dataset: Path, tmp_path: Path):
    """max_minutes is the run's budget, not each launch's: a resumed run goes on with the
    seconds its checkpoint has trained, so the cosine does not restart and a spent budget
    stops it after one step."""
    cache, out = tmp_path / "clips.npz", tmp_path / "run"
    cfg = _debug_cfg(tiny_dataset, out, cache, max_steps=6, max_minutes=1.0, warmup_steps=1)
    train(replace(cfg, stop_at_step=2))
    state_path = out / "checkpoints" / "step_000002" / "training_state.json"
    state = json.loads(state_path.read_text())
    assert 0.0 < state["elapsed_s"] < 60.0
    state["elapsed_s"] = 61.0  # as if the first launch had trained for 61 s
    state_path.write_text(json.dumps(state))
    train(cfg)
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert kept == ["step_000002", "step_000003"]  # stopped at once, not run on to step 6
    state = json.loads((out / "checkpoints" / "step_000003" / "training_state.json").read_text())
    assert state["elapsed_s"] >= 61.0
    # the budget is spent, so the last step ran at the end of the cosine (10 %)
    assert state["param_groups"][0]["lr"] == pytest.approx(0.1 * cfg.learning_rate)


def test_a_stale_clip_cache_is_refused_naming_what_differs(tiny_dataset: Path, tmp_path: Path):
    """A cache records what it was built from; a run that names other datasets or another
    frame stride gets an error, not the old clips."""
    cache = tmp_path / "clips.npz"
    train(_debug_cfg(tiny_dataset, tmp_path / "a", cache, max_steps=1))
    source = load_clip_cache(cache).source
    assert source["dataset_roots"] == [str(tiny_dataset.resolve())]
    assert source["frame_stride"] == PRESETS["debug"].model.frame_stride
    other = tmp_path / "other_dataset"
    shutil.copytree(tiny_dataset, other)  # the same episodes, but not the data this cache is of
    data = replace(PRESETS["debug"].data, dataset_roots=(other,), cache_path=cache)
    moved = replace(_debug_cfg(tiny_dataset, tmp_path / "b", cache, max_steps=1), data=data)
    with pytest.raises(ValueError, match=r"dataset_roots: cache \[.*tiny_video'\], wanted"):
        train(moved)
    model = PRESETS["debug"].model
    strided = _debug_cfg(
        tiny_dataset,
        tmp_path / "c",
        cache,
        max_steps=1,
        model=replace(model, frame_stride=model.frame_stride + 1),
    )
    with pytest.raises(ValueError, match=r"frame_stride: cache \d+, wanted \d+.*delete it"):
        train(strided)
    # the cache alone (no datasets named), for the model it was built for, is used as is
    alone = replace(PRESETS["debug"].data, dataset_roots=(), cache_path=cache)
    train(replace(PRESETS["debug"], output_dir=tmp_path / "d", data=alone, max_steps=1))
    assert (tmp_path / "d" / "pipeline" / "model_index.json").is_file()
    # compact caches keep the record too
    packed = write_clip_cache(load_clip_cache(cache), tmp_path / "packed.npz", compact=True)
    assert load_clip_cache(packed).source == source


def test_training_off_still_frames_needs_a_marked_cache(tiny_dataset: Path, tmp_path: Path):
    cache = tmp_path / "clips.npz"
    out = tmp_path / "b"
    train(_debug_cfg(tiny_dataset, out, cache, loss_on_still_frames=False))
    # the dataset's clips are marked: at stride 4, steps 0, 4, 8 of a 9-step episode are in
    # it and the 4th frame repeats step 8; the 5-step episode has steps 0 and 4
    assert load_clip_cache(cache).valid_frames.tolist() == [3, 2, 3]
    state = json.loads((out / "checkpoints" / "step_000002" / "training_state.json").read_text())
    assert np.isfinite(state["loss"])
    assert json.loads((out / "train_config.json").read_text())["loss_on_still_frames"] is False
    # a cache that does not mark them (written before dataset caches did) is refused, named
    write_clip_cache(replace(load_clip_cache(cache), valid_frames=None), tmp_path / "old.npz")
    old = _debug_cfg(tiny_dataset, tmp_path / "a", tmp_path / "old.npz", loss_on_still_frames=False)
    with pytest.raises(ValueError, match=r"loss_on_still_frames=false.*old\.npz"):
        train(old)


def test_bad_config_values_are_quoted():
    with pytest.raises(ValueError, match="'caption'"):
        replace(PRESETS["debug"].data, text_field="caption")
    with pytest.raises(ValueError, match="-1"):
        replace(PRESETS["debug"], batch_size=-1)


def test_two_process_accelerate_run(tiny_dataset: Path, tmp_path: Path, rendezvous_port: int):
    """Two CPU processes (gloo DDP): both ranks train, replicas stay equal.

    With accelerate 1.x, ``accelerate launch --num_processes 2 --cpu`` starts ONE process
    unless MPI is configured; ``--multi_gpu --num_processes 2`` with ``ACCELERATE_USE_CPU=1``
    starts two torchrun workers that use gloo on the CPU (docs/video_models.md).
    """
    cache = tmp_path / "clips.npz"
    out = tmp_path / "ddp"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
        "ACCELERATE_USE_CPU": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--main_process_port",
        str(rendezvous_port),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "video_models.train_executor",
        "--preset",
        "debug",
        f"--output_dir={out}",
        f"--data.dataset_roots={tiny_dataset}",
        f"--data.cache_path={cache}",
        "--max_steps=2",
    ]
    run = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    state = json.loads((out / "checkpoints" / "step_000002" / "training_state.json").read_text())
    assert state["world_size"] == 2
    assert state["samples_per_rank"] == [4, 4]  # batch 2 per rank x 2 steps, on each rank
    c0, c1 = state["param_checksum_per_rank"]
    assert c0 == pytest.approx(c1, rel=1e-9)
    pipe = ExecutorVideoPipeline.from_pretrained(out / "pipeline")
    assert pipe.config.num_frames == 4


def test_clip_cache_cli_bad_input_exits_2_naming_it(tmp_path: Path, capsys) -> None:
    from video_models.clips_executor import main as clips_main

    missing = tmp_path / "no_such_dataset"
    out = f"--out={tmp_path / 'clips.npz'}"
    cases = [
        ([f"--dataset_roots={missing}", out, "--model_preset=debug"], "no_such_dataset"),
        ([f"--dataset_roots={missing}", out, "--model_preset=bogus"], "'bogus'"),
        ([out, "--model_preset=debug"], "--dataset_roots"),
    ]
    for argv, named in cases:
        assert clips_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert named in err, err
        assert "Traceback" not in err, err
    assert not (tmp_path / "clips.npz").exists()
