"""The committed sim Demonstrator loads from the repository and imagines a valid video."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from executor_core.frames import center_crop_resize
from video_models.pipeline_executor import ExecutorVideoPipeline

CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "demonstrator_sim"


def test_committed_demonstrator_samples_a_video():
    pipe = ExecutorVideoPipeline.from_pretrained(CHECKPOINT)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.prediction == "sample"
    image = np.full((48, 64, 3), (150, 140, 125), np.uint8)  # table colour, any size
    image[20:26, 30:36] = (220, 30, 30)  # a red cube
    a = pipe(image, "put the red cube in the bowl", seed=0, num_inference_steps=2).frames
    b = pipe(image, "put the red cube in the bowl", seed=0, num_inference_steps=2).frames
    assert a.shape == (1, 16, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0, 0], center_crop_resize(image, 64))
    # A trained model keeps the scene: imagined frames stay close to the table colour.
    assert np.abs(a[0, 1:].astype(float).mean((0, 1, 2)) - (150, 140, 125)).max() < 40


def test_committed_sft_baseline_with_the_methods_compute_samples_a_video():
    """checkpoints/executor_sft_gpu_sim (the SFT baseline of issue 14 given the bringup's
    Executor's compute) loads as an Executor: the short prompt, the Demonstrator's guidance."""
    path = CHECKPOINT.parent / "executor_sft_gpu_sim"
    pipe = ExecutorVideoPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.guidance_scale == 3.0
    image = np.full((64, 64, 3), (150, 140, 125), np.uint8)
    image[20:26, 30:36] = (220, 30, 30)
    a = pipe(image, "put the red cube in the bowl", seed=1, num_inference_steps=2).frames
    assert a.shape == (1, 16, 64, 64, 3)
    np.testing.assert_array_equal(a[0, 0], image)
    assert (path / "configs" / "sft_train_config.json").is_file()
