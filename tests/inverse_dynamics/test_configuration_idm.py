from __future__ import annotations

import pytest

from inverse_dynamics.configuration_idm import IDMConfig


def test_defaults_follow_the_robot_description_and_video_contract() -> None:
    cfg = IDMConfig()
    assert cfg.joint_names == (
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
        "wrist_roll",
        "gripper",
    )
    assert cfg.horizon == 4
    assert cfg.control_rate_hz == 10.0


@pytest.mark.parametrize(
    ("overrides", "quoted"),
    [
        ({"image_size_px": 50}, "50"),
        ({"num_input_frames": 1}, "1"),
        ({"frame_stride": 0}, "0"),
        ({"head": "diffusion"}, "'diffusion'"),
        ({"encoder": "vit"}, "'vit'"),
        ({"state_dropout_prob": 1.5}, "1.5"),
        ({"conv_channels": (8, 8, 8, 8, 8, 8, 8)}, "7 stride-2 stages"),
        ({"joint_names": ("a", "a")}, "('a', 'a')"),
    ],
)
def test_bad_values_are_quoted_in_the_error(overrides: dict, quoted: str) -> None:
    with pytest.raises(ValueError, match=quoted.replace("(", r"\(").replace(")", r"\)")):
        IDMConfig(**overrides)
