from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from self_distillation.judges.base import VideoJudge
from self_distillation.judges.vlm import VLMJudge, VLMJudgeConfig, contact_sheet, parse_judge_answer
from self_distillation.vlm_backends import TransformersVLM, TransformersVLMConfig

EPISODE = {"prompt": "put the red cube in the bowl", "success_criterion": "red cube in bowl"}


class ScriptedVLMDouble:
    """Test double of a VLM backend: replays recorded answers, records what it was asked."""

    name = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[tuple[int, ...], str]] = []

    def generate(self, images: list[np.ndarray], prompts: list[str]) -> list[str]:
        self.asked.extend((img.shape, p) for img, p in zip(images, prompts, strict=True))
        return [self.answers.pop(0) for _ in prompts]


def _video(t: int = 9, size: int = 16) -> np.ndarray:
    return np.stack([np.full((size, size, 3), 10 * i, np.uint8) for i in range(t)])


def test_contact_sheet_takes_first_and_last_in_order() -> None:
    sheet = contact_sheet(_video(9), num_frames=4, tile_px=16)
    assert sheet.shape == (32, 32, 3)
    # frames 0, 3, 5, 8 (linspace rounded) in reading order
    assert [sheet[0, 0, 0], sheet[0, 16, 0], sheet[16, 0, 0], sheet[16, 16, 0]] == [0, 30, 50, 80]


def test_parse_recorded_answers() -> None:
    a = parse_judge_answer(
        '```json\n{"success": true, "instruction_following": 8, '
        '"physics": 9.5, "reason": "cube ends in bowl"}\n```'
    )
    assert a == {
        "success": True,
        "instruction_following": 8.0,
        "physics": 9.5,
        "reason": "cube ends in bowl",
    }
    assert (
        parse_judge_answer('{"success": "no", "instruction_following": 2, "physics": 7}')["success"]
        is False
    )
    with pytest.raises(ValueError, match="physics"):
        parse_judge_answer('{"success": true, "instruction_following": 3, "physics": 11}')
    with pytest.raises(ValueError, match="'success' must be a boolean"):
        parse_judge_answer('{"success": 1, "instruction_following": 3, "physics": 1}')


def test_vlm_judge_scores_and_counts_unparsable() -> None:
    backend = ScriptedVLMDouble(
        [
            '{"success": true, "instruction_following": 8, "physics": 6, "reason": "done"}',
            "The video shows a robot.",
        ]
    )
    judge = VLMJudge(backend, VLMJudgeConfig(num_frames=4, tile_px=16, success_weight=0.5))
    assert isinstance(judge, VideoJudge)
    good, bad = judge.judge_many([_video(), _video()], [EPISODE, EPISODE])
    assert good.success
    assert good.score == pytest.approx(0.5 + 0.5 * 0.8)
    assert good.details["physics"] == 6.0
    assert not bad.success
    assert bad.score == 0.0
    assert bad.reason == "unparsable"
    assert judge.unparsable_count == 1
    shape, prompt = backend.asked[0]
    assert shape == (32, 32, 3)
    assert '"put the red cube in the bowl"' in prompt
    assert "red cube in bowl" in prompt


def test_vlm_judge_on_a_tiny_local_vlm(tiny_vlm_dir: Path) -> None:
    backend = TransformersVLM(TransformersVLMConfig(model_path=tiny_vlm_dir, max_new_tokens=4))
    judge = VLMJudge(backend, VLMJudgeConfig(num_frames=2, tile_px=32))
    verdict = judge.judge(_video(5), EPISODE)
    # random weights never produce the JSON: a failure with score 0, counted, never a pass
    assert (verdict.success, verdict.score, verdict.reason) == (False, 0.0, "unparsable")
    assert judge.unparsable_count == 1
