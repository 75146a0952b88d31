"""executor-run-task: argument validation and exit codes without a server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from ros_helpers import REPO, fresh_domain_id

from executor_bringup.run_task_client import parse_args


def test_parse_args() -> None:
    args = parse_args(["put the red cube in the bowl", "--namespace", "/r1", "--timeout", "5"])
    assert (args.task, args.namespace, args.timeout) == ("put the red cube in the bowl", "/r1", 5)
    with pytest.raises(SystemExit):
        parse_args(["   "])
    with pytest.raises(SystemExit):
        parse_args(["go", "--timeout", "-1"])


@pytest.mark.ros
def test_exit_code_2_without_server() -> None:
    env = {**os.environ, "ROS_DOMAIN_ID": str(fresh_domain_id())}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "executor_bringup.run_task_client",
            "go",
            "--server-wait",
            "1",
            "--namespace",
            "/nobody_here",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no execute_task server in namespace '/nobody_here'" in proc.stderr
