"""The test suite's own ROS helper: each pytest-xdist worker draws its DDS domains from a
slice of its own, so two workers never meet on one domain; a graph's node that died is
named with its log."""

from __future__ import annotations

import subprocess
import sys

import pytest
import ros_helpers
from ros_helpers import assert_running, fresh_domain_id, stop_process


def _domains(
    monkeypatch: pytest.MonkeyPatch, worker: str | None, count: str | None, pid: int = 4242
) -> set[int]:
    """The first 60 domains of a fresh process with this pid, as this xdist worker."""
    monkeypatch.setattr(ros_helpers, "_counter", [0])
    monkeypatch.setattr(ros_helpers.os, "getpid", lambda: pid)
    for name, value in (("PYTEST_XDIST_WORKER", worker), ("PYTEST_XDIST_WORKER_COUNT", count)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return {fresh_domain_id() for _ in range(60)}


def test_one_process_uses_distinct_domains_in_range(monkeypatch: pytest.MonkeyPatch) -> None:
    domains = _domains(monkeypatch, None, None)
    assert len(domains) == 60
    assert all(1 <= d <= 200 for d in domains)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_xdist_workers_never_share_a_domain(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    seen: list[set[int]] = []
    for index in range(count):
        # each worker is its own process; these pids collide under the pid-only rule
        domains = _domains(monkeypatch, f"gw{index}", str(count), pid=5000 + 31 * index)
        assert all(1 <= d <= 200 for d in domains), domains
        assert len(domains) == min(60, 200 // count)  # distinct within the worker's slice
        seen.append(domains)
    for i in range(count):
        for j in range(i + 1, count):
            assert not seen[i] & seen[j], (i, j)


def test_assert_running_names_the_node_that_ended(tmp_path) -> None:
    logs = [tmp_path / "sim.log", tmp_path / "exec.log"]
    script = "import sys; print('spin died: InvalidHandle'); sys.exit(3)"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(logs[1], "w") as log:
        dead = subprocess.Popen([sys.executable, "-c", script], stdout=log)
    logs[0].write_text("")
    try:
        dead.wait(timeout=30)
        with pytest.raises(AssertionError) as failure:
            assert_running([alive, dead], logs)
        text = str(failure.value)
        assert "exec (exit status 3) ended" in text
        assert "spin died: InvalidHandle" in text
        assert text.count(" ended;") == 1  # the running one is not named
        assert_running([alive], logs[:1])  # a running graph passes
    finally:
        stop_process(alive)
