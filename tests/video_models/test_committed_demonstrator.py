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
