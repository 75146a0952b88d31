"""The VLM judge: the execution-aware judge's three questions plus DreamGen-Bench's two,
asked of an OpenAI-compatible server (here a local test double) or a local transformers VLM."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from executor_core.config_cli import parse_config
from self_distillation import evaluate, grpo_trainer
from self_distillation.judges.base import JudgeVerdict, VideoJudge
from self_distillation.judges.execution_aware import ExecutionAwareVerdict
from self_distillation.judges.programmatic import ProgrammaticJudge
from self_distillation.judges.vlm import (
    JUDGE_PROMPT,
    QUESTION_NAMES,
    REPLY_SCHEMA,
    RETRY_SUFFIX,
    MalformedReplyError,
    VLMJudge,
    VLMJudgeConfig,
    parse_judge_reply,
    sample_frame_indices,
)
from self_distillation.judging import JudgeConfig, judge_videos, make_judge
from self_distillation.vlm_backends import (
    HTTPVLM,
    HTTPVLMConfig,
    TransformersVLM,
    TransformersVLMConfig,
)

EPISODE = {
    "episode_index": "img0-0",
    "prompt": "put the red cube in the bowl",
    "success_criterion": "the red cube rests in the bowl",
    "task_family": "pick_place",
    "object": "red",
    "target": "bowl",
}


def reply(**scores: float) -> str:
    """A well-formed judge reply; every score 1.0 unless given."""
    return json.dumps(
        {q: {"score": scores.get(q, 1.0), "reason": f"{q} reason"} for q in QUESTION_NAMES}
    )


def completion(text: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-double",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    ).encode()


@dataclass
class Step:
    """One scripted answer of the server double."""

    text: str | None = None  # the assistant's reply (a 200 chat completion)
    status: int = 200
    body: bytes | None = None  # a raw body instead of a chat completion
    delay_s: float = 0.0


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closes the socket under a sleeping handler


class ChatServerDouble:
    """Test double of an OpenAI-compatible VLM server (what vLLM or llama.cpp's server
    offer): a tiny http.server on 127.0.0.1 that answers POST /v1/chat/completions from a
    script and records every request body. An exhausted script answers HTTP 500."""

    def __init__(self, script: list[Step]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                double.requests.append(body)
                step = double.script.pop(0) if double.script else Step(status=500, body=b"{}")
                time.sleep(step.delay_s)
                payload = step.body if step.body is not None else completion(step.text or "")
                self.send_response(step.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> ChatServerDouble:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _video(t: int = 48, size: int = 24) -> np.ndarray:
    """Frame i is a flat grey of value 5 * i, so an image tells which frame it is."""
    return np.stack([np.full((size, size, 3), 5 * i, np.uint8) for i in range(t)])


def _http_judge(server: ChatServerDouble, **judge_kwargs: Any) -> VLMJudge:
    backend = HTTPVLM(
        HTTPVLMConfig(
            base_url=server.base_url,
            model="qwen2.5-vl-double",
            temperature=0.0,
            image_size_px=32,
            retry_backoff_s=0.0,
            timeout_s=5.0,
        )
    )
    return VLMJudge(backend, VLMJudgeConfig(**judge_kwargs))


def _sent_frames(body: dict[str, Any]) -> list[int]:
    """The frame index each image of a request shows (from its grey value)."""
    frames = []
    for part in body["messages"][0]["content"]:
        if part["type"] != "image_url":
            continue
        url = part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        png = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
        img = cv2.imdecode(png, cv2.IMREAD_COLOR)
        assert img.shape == (32, 32, 3)
        assert (img == img[0, 0, 0]).all()
        frames.append(int(img[0, 0, 0]) // 5)
    return frames


# ----------------------------------------------------------------------- frame sampling
def test_frames_spread_over_the_whole_video_first_and_last_included() -> None:
    assert sample_frame_indices(48, 8).tolist() == [0, 7, 13, 20, 27, 34, 40, 47]
    assert sample_frame_indices(5, 8).tolist() == [0, 1, 2, 3, 4]  # short video: all frames
    assert sample_frame_indices(2, 2).tolist() == [0, 1]
    for t in range(2, 70):
        for n in range(2, 12):
            idx = sample_frame_indices(t, n)
            assert idx[0] == 0
            assert idx[-1] == t - 1
            assert len(idx) == min(n, t)
            assert (np.diff(idx) > 0).all(), (t, n, idx)
    with pytest.raises(ValueError, match="got 1"):
        sample_frame_indices(1, 4)
    with pytest.raises(ValueError, match="num_frames"):
        VLMJudgeConfig(num_frames=1)


# ------------------------------------------------------------------------------ parsing
def test_reply_parses_to_five_scores_with_reasons() -> None:
    text = reply(task=0.25, agent=1, consistency=0.0, instruction_following=0.5, physics=0.75)
    answers = parse_judge_reply(f"```json\n{text}\n```\n")  # one code fence is tolerated
    assert {q: a.score for q, a in answers.items()} == {
        "task": 0.25,
        "agent": 1.0,
        "consistency": 0.0,
        "instruction_following": 0.5,
        "physics": 0.75,
    }
    assert answers["physics"].reason == "physics reason"
    assert set(REPLY_SCHEMA["required"]) == set(QUESTION_NAMES)


def _edit(change: dict[str, Any]) -> str:
    data = json.loads(reply())
    for key, value in change.items():
        if "." in key:
            outer, inner = key.split(".")
            data[outer][inner] = value
        elif value is None:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("The robot put the cube in the bowl.", "<reply>"),
        ("Sure! " + reply(), "<reply>"),  # prose around the object is not strict JSON
        ("[1, 2]", "<reply>"),
        (_edit({"agent": None}), "agent"),
        (_edit({"success": True}), "success"),
        (_edit({"consistency": 0.9}), "consistency"),
        (_edit({"task.score": 1.5}), "task.score"),
        (_edit({"task.score": "0.9"}), "task.score"),
        (_edit({"task.score": True}), "task.score"),
        (_edit({"task.score": float("nan")}), "task.score"),
        (_edit({"physics.reason": ""}), "physics.reason"),
        (_edit({"agent.confidence": 0.3}), "agent.confidence"),
    ],
)
def test_malformed_reply_names_the_bad_field(text: str, field: str) -> None:
    with pytest.raises(MalformedReplyError, match=f"field '{field}'") as caught:
        parse_judge_reply(text)
    assert caught.value.field == field


def test_docs_hold_the_exact_prompt_and_schema() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "vlm_judge.md").read_text()
    placeholders = {k: "{" + k + "}" for k in ("n", "frame_list", "total", "prompt", "success")}
    assert JUDGE_PROMPT.format(**placeholders) in doc
    assert RETRY_SUFFIX.strip() in doc
    assert json.dumps(REPLY_SCHEMA, indent=2) in doc


# ----------------------------------------------------------- over the HTTP server double
def test_judge_over_http_sends_the_frames_and_prompt_and_reads_the_scores() -> None:
    script = [
        Step(reply(task=0.9, agent=0.8, consistency=1.0, instruction_following=0.9, physics=0.6)),
        Step(reply(task=1.0, agent=0.1, consistency=0.9)),
    ]
    with ChatServerDouble(script) as server:
        judge = _http_judge(server, num_frames=8)
        assert isinstance(judge, VideoJudge)
        good, teleport = judge.judge_many([_video(48), _video(20)], [EPISODE, EPISODE])

    body = server.requests[0]
    assert body["model"] == "qwen2.5-vl-double"
    assert body["temperature"] == 0.0
    assert len(body["messages"]) == 1
    content = body["messages"][0]["content"]
    # one request per video: its 8 frames in time order, first and last included, then text
    assert [p["type"] for p in content] == ["image_url"] * 8 + ["text"]
    assert _sent_frames(body) == [0, 7, 13, 20, 27, 34, 40, 47]
    assert _sent_frames(server.requests[1]) == sample_frame_indices(20, 8).tolist()
    prompt = content[-1]["text"]
    assert prompt == JUDGE_PROMPT.format(
        n=8,
        frame_list="0, 7, 13, 20, 27, 34, 40, 47",
        total=48,
        prompt=EPISODE["prompt"],
        success=EPISODE["success_criterion"],
    )
    for question in QUESTION_NAMES:
        assert question in prompt

    assert isinstance(good, ExecutionAwareVerdict)
    assert isinstance(good, JudgeVerdict)
    assert good.success
    assert good.scores == {"task": 0.9, "agent": 0.8, "consistency": 1.0}
    assert good.score == pytest.approx(0.9)
    assert good.reason == "all three pass"
    assert good.details["scores"]["physics"] == 0.6
    assert good.details["physics"] == pytest.approx(6.0)  # evaluate.score_video's 0-10 scale
    assert good.details["instruction_following"] == pytest.approx(9.0)
    assert good.details["frames"] == [0, 7, 13, 20, 27, 34, 40, 47]
    assert good.details["attempts"] == 1
    assert good.details["passed"] == {"task": True, "agent": True, "consistency": True}

    assert not teleport.success
    assert teleport.details["passed"] == {"task": True, "agent": False, "consistency": True}
    assert teleport.reason == "agent: agent reason"


@pytest.mark.parametrize(
    ("scores", "success"),
    [
        ({}, True),
        ({"task": 0.7, "agent": 0.7, "consistency": 0.7}, True),  # thresholds are inclusive
        ({"task": 0.69}, False),
        ({"agent": 0.5}, False),
        ({"consistency": 0.0}, False),
        # DreamGen-Bench's scores are reported, not part of judged success
        ({"instruction_following": 0.0, "physics": 0.0}, True),
    ],
)
def test_judged_success_is_all_three_at_their_thresholds(
    scores: dict[str, float], success: bool
) -> None:
    with ChatServerDouble([Step(reply(**scores))]) as server:
        verdict = _http_judge(server, num_frames=2).judge(_video(6), EPISODE)
    assert verdict.success is success
    assert verdict.score == pytest.approx(np.mean([scores.get(q, 1.0) for q in verdict.scores]))


def test_a_malformed_reply_is_asked_again_with_the_error() -> None:
    with ChatServerDouble([Step(_edit({"agent": None})), Step(reply())]) as server:
        judge = _http_judge(server, num_frames=3)
        verdict = judge.judge(_video(10), EPISODE)
    assert verdict.success
    assert verdict.details["attempts"] == 2
    assert judge.malformed_count == 0
    first, second = (r["messages"][0]["content"][-1]["text"] for r in server.requests)
    assert "rejected" not in first
    assert second.startswith(first)
    assert second.endswith(
        "Your previous reply was rejected: field 'agent': missing\n"
        "Reply again with the JSON object only, exactly as specified."
    )
    assert _sent_frames(server.requests[1]) == [0, 5, 9]  # the same frames again


def test_a_reply_malformed_every_time_fails_or_raises_never_passes() -> None:
    bad = _edit({"task.score": 2})
    with ChatServerDouble([Step(bad)] * 3) as server:
        judge = _http_judge(server, num_frames=2, max_attempts=3)
        verdict = judge.judge(_video(6), EPISODE)
    assert len(server.requests) == 3
    assert isinstance(verdict, ExecutionAwareVerdict)
    assert (verdict.success, verdict.score) == (False, 0.0)
    assert verdict.scores == {"task": 0.0, "agent": 0.0, "consistency": 0.0}
    assert verdict.details["field"] == "task.score"
    assert "field 'task.score': must be a number in [0, 1], got 2" in verdict.reason
    assert judge.malformed_count == 1
    # the benchmark's row gives it no credit either
    row = evaluate.score_video(_video(6), EPISODE, verdict, ProgrammaticJudge())
    assert (row["success"], row["instruction_following"], row["physics"]) == (False, 0.0, 0.0)

    with (
        ChatServerDouble([Step("no JSON here")] * 2) as server,
        pytest.raises(MalformedReplyError, match="field '<reply>': not JSON"),
    ):
        _http_judge(server, num_frames=2, max_attempts=2, on_malformed="raise").judge(
            _video(6), EPISODE
        )


def test_server_errors_are_retried_then_named() -> None:
    with ChatServerDouble([Step(status=503, body=b"{}"), Step(reply())]) as server:
        assert _http_judge(server, num_frames=2).judge(_video(6), EPISODE).success
    assert len(server.requests) == 2

    # the default retries: 3 attempts, then an error naming the URL and the status
    with (
        ChatServerDouble([Step(status=500, body=b"{}")] * 3) as server,
        pytest.raises(RuntimeError, match=r"chat/completions failed after 3 attempts.*500"),
    ):
        _http_judge(server, num_frames=2).judge(_video(6), EPISODE)

    with (
        ChatServerDouble([Step(body=b"<html>gateway</html>")]) as server,
        pytest.raises(RuntimeError, match="unusable body"),
    ):
        _http_judge(server, num_frames=2).judge(_video(6), EPISODE)


def test_a_server_that_does_not_answer_in_time_is_an_error() -> None:
    cfg = HTTPVLMConfig(timeout_s=0.2, max_retries=1, retry_backoff_s=0.0, image_size_px=16)
    with ChatServerDouble([Step(reply(), delay_s=1.0), Step(reply())]) as server:
        cfg = replace(cfg, base_url=server.base_url)
        # the first attempt times out, the retry is answered
        assert VLMJudge(HTTPVLM(cfg)).judge(_video(6), EPISODE).success
    with ChatServerDouble([Step(reply(), delay_s=1.0)] * 2) as server:
        cfg = replace(cfg, base_url=server.base_url)
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match=r"failed after 2 attempts: .*timed out"):
            VLMJudge(HTTPVLM(cfg)).judge(_video(6), EPISODE)
        assert time.monotonic() - t0 < 1.5


# -------------------------------------------------------------------- the judging entry
def test_judge_kind_vlm_plugs_into_the_judging_entry_point() -> None:
    with ChatServerDouble([Step(reply()), Step(reply(consistency=0.2))]) as server:
        cfg = parse_config(
            grpo_trainer.GRPOConfig,
            [
                "--preset=sim",
                "--judge.kind=vlm",
                "--judge.vlm_backend=http",
                f"--judge.http.base_url={server.base_url}",
                "--judge.http.image_size_px=32",
                "--judge.http.json_mode=true",
                "--judge.vlm_judge.num_frames=4",
            ],
            grpo_trainer.PRESETS,
        )
        judge = make_judge(cfg.judge)
        assert isinstance(judge, VLMJudge)
        verdicts = judge_videos(judge, [_video(12), _video(12)], [EPISODE, EPISODE])
    assert [v.success for v in verdicts] == [True, False]
    assert verdicts[1].details["passed"]["consistency"] is False
    body = server.requests[0]
    assert body["temperature"] == 0.0  # the judge decodes greedily by default
    assert body["response_format"] == {"type": "json_object"}
    assert _sent_frames(body) == [0, 4, 7, 11]


def test_the_programmatic_judge_stays_the_default() -> None:
    assert JudgeConfig().kind == "programmatic"
    assert isinstance(make_judge(JudgeConfig()), ProgrammaticJudge)
    for presets in (grpo_trainer.PRESETS, evaluate.PRESETS):
        assert presets["sim"].judge.kind != "vlm"


# --------------------------------------------------------------- local transformers VLM
def test_vlm_judge_on_a_tiny_local_vlm(tiny_vlm_dir: Path) -> None:
    backend = TransformersVLM(TransformersVLMConfig(model_path=tiny_vlm_dir, max_new_tokens=4))
    judge = VLMJudge(backend, VLMJudgeConfig(num_frames=3, max_attempts=2))
    images, prompt = judge.request(_video(9, size=32), EPISODE)[1:]
    assert len(images) == 3
    (text,) = backend.generate([images], [prompt])  # three images in one request
    assert isinstance(text, str)
    verdict = judge.judge(_video(9, size=32), EPISODE)
    # random weights never produce the JSON: a failure with score 0, counted, never a pass
    assert (verdict.success, verdict.score) == (False, 0.0)
    assert verdict.details["attempts"] == 2
    assert judge.malformed_count == 1
