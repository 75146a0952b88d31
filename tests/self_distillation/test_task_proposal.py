from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from self_distillation.task_proposal import (
    SceneImage,
    SimTaskFamilyProposer,
    VLMTaskProposer,
    collect_outputs,
)
from self_distillation.vlm_backends import (
    HTTPVLM,
    HTTPVLMConfig,
    TransformersVLM,
    TransformersVLMConfig,
    parse_chat_completion,
)

RECORDED = Path(__file__).parent / "recorded"


def _scenes(n: int) -> list[SceneImage]:
    rng = np.random.default_rng(0)
    return [
        SceneImage(f"s{i}", rng.integers(0, 255, (40, 48, 3), dtype=np.uint8), {"scene": {}})
        for i in range(n)
    ]


def test_recorded_responses_parse_and_are_counted() -> None:
    names = sorted(p.name for p in RECORDED.glob("*.json"))
    raws = [parse_chat_completion(json.loads((RECORDED / n).read_text())) for n in names]
    batch = collect_outputs(names, raws, source="recorded")
    kept = {sid: p.task_prompt for sid, p in batch.proposals}
    assert kept == {
        "ollama_prose_numbered_text.json": "Stack the green cube on the yellow cube",
        "vllm_qwen25vl_fenced.json": "Put the red cube in the blue bowl",
    }
    assert batch.stats.accepted == 2
    assert dict(batch.stats.rejected) == {"unsafe_liquids": 1, "not_json": 1}
    assert batch.stats.acceptance_rate == 0.5
    assert {r.scene_id for r in batch.rejections} == {
        "hosted_content_parts_unsafe.json",
        "vllm_truncated.json",
    }


def test_duplicates_within_a_scene_are_rejected() -> None:
    raw = (RECORDED / "vllm_qwen25vl_fenced.json").read_text()
    text = parse_chat_completion(json.loads(raw))
    batch = collect_outputs(["a", "a", "b"], [text] * 3, source="t")
    assert [sid for sid, _ in batch.proposals] == ["a", "b"]
    assert dict(batch.stats.rejected) == {"duplicate": 1}


def test_tiny_transformers_vlm_batched_plumbing(tiny_vlm_dir: Path) -> None:
    vlm = TransformersVLM(
        TransformersVLMConfig(model_path=tiny_vlm_dir, max_new_tokens=6, batch_size=2)
    )
    proposer = VLMTaskProposer(vlm)
    batch = proposer.propose(_scenes(3), num_per_scene=1)
    # Random weights produce gibberish: every output must be rejected and counted, not used.
    assert batch.stats.total == 3
    assert batch.stats.accepted == 0
    assert len(batch.rejections) == 3
    assert all(r.raw_output for r in batch.rejections)
    # Greedy decoding is deterministic: the same scene gives the same text.
    again = vlm.generate([_scenes(1)[0].image_rgb], ["x"])
    assert again == vlm.generate([_scenes(1)[0].image_rgb], ["x"])


def test_transformers_vlm_refuses_missing_or_pickled(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no VLM"):
        TransformersVLM(TransformersVLMConfig(model_path=tmp_path))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin.*pickled weights are refused"):
        TransformersVLM(TransformersVLMConfig(model_path=tmp_path))
    # Beside safetensors too: no loader of the stack reads a pickle (executor_core.safe_loading).
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin"):
        TransformersVLM(TransformersVLMConfig(model_path=tmp_path))


class _ChatServerDouble(BaseHTTPRequestHandler):
    """Test double of an OpenAI-compatible server: replays a recorded completion and
    remembers what it was sent."""

    reply: bytes = b""
    status: int = 200
    seen: list = []  # noqa: RUF012 - shared on purpose between handler instances

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).reply)

    def log_message(self, *args: object) -> None:
        pass


def test_http_proposer_against_local_server(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _ChatServerDouble.reply = (RECORDED / "vllm_qwen25vl_fenced.json").read_bytes()
    _ChatServerDouble.seen = []
    server = HTTPServer(("127.0.0.1", 0), _ChatServerDouble)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secret = "sk-test-do-not-log-123"
    monkeypatch.setenv("EXEC_TEST_KEY", secret)
    try:
        cfg = HTTPVLMConfig(
            base_url=f"http://127.0.0.1:{server.server_port}/v1",
            model="qwen-test",
            api_key_env="EXEC_TEST_KEY",
            image_size_px=32,
        )
        with caplog.at_level(logging.DEBUG):
            batch = VLMTaskProposer(HTTPVLM(cfg)).propose(_scenes(2), num_per_scene=1)
    finally:
        server.shutdown()
        server.server_close()
    assert [p.task_prompt for _, p in batch.proposals] == ["Put the red cube in the blue bowl"] * 2
    assert len(_ChatServerDouble.seen) == 2
    path, auth, body = _ChatServerDouble.seen[0]
    assert path == "/v1/chat/completions"
    assert auth == f"Bearer {secret}"
    assert body["model"] == "qwen-test"
    image_part = body["messages"][0]["content"][0]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert secret not in caplog.text


def test_http_client_error_is_not_retried_and_names_the_status(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _ChatServerDouble.reply = b'{"error": "bad key"}'
    _ChatServerDouble.status = 401
    _ChatServerDouble.seen = []
    server = HTTPServer(("127.0.0.1", 0), _ChatServerDouble)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("EXEC_TEST_KEY", "sk-wrong-secret")
    try:
        cfg = HTTPVLMConfig(
            base_url=f"http://127.0.0.1:{server.server_port}/v1",
            api_key_env="EXEC_TEST_KEY",
            image_size_px=16,
            max_retries=3,
        )
        with caplog.at_level(logging.DEBUG), pytest.raises(RuntimeError, match="HTTP 401"):
            HTTPVLM(cfg).generate([_scenes(1)[0].image_rgb], ["x"])
    finally:
        _ChatServerDouble.status = 200
        server.shutdown()
        server.server_close()
    assert len(_ChatServerDouble.seen) == 1  # a 4xx is final
    assert "sk-wrong-secret" not in caplog.text


def test_http_config_rejects_bad_url() -> None:
    with pytest.raises(ValueError, match="ftp://x"):
        HTTPVLMConfig(base_url="ftp://x")


def test_sim_proposer_validates_task_family_records() -> None:
    def tasks_for_scene(scene: dict) -> list[dict]:
        return [
            {
                "prompt": "put the red cube in the bowl",
                "solution": "1. grasp red\n2. drop in bowl",
                "success_criterion": "red cube in bowl",
                "task_family": "pick_place",
                "paraphrases": ["place the red block into the bowl"],
            },
            {"prompt": "pour water", "solution": ["1. a", "2. b"], "success_criterion": "wet"},
            {"prompt": "stack", "solution": ["1. a", "2. b"]},
        ]

    batch = SimTaskFamilyProposer(tasks_for_scene).propose(_scenes(2), num_per_scene=3)
    assert batch.stats.accepted == 2
    assert dict(batch.stats.rejected) == {"unsafe_liquids": 2, "missing_field": 2}
    p = batch.proposals[0][1]
    assert p.metadata["task_family"] == "pick_place"
    assert p.solution_steps == ("grasp red", "drop in bowl")
