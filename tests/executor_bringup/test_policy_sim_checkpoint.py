"""The committed sim policy (``checkpoints/policy_sim/pretrained_model``, issue 17) in the
ROS graph, started the way an operator starts it: ``executor-bringup sim --set
policy=checkpoints/policy_sim/pretrained_model`` runs sim_arm_node, safety_node and
policy_node (in place of executor_node) over real DDS, and ``executor-run-task`` sends one
goal. The policy loads, its chunks go through the safety node to the simulated arm, the arm
moves, and the goal ends with the sim's verifier's verdict or its timeout; the goal is
recorded. Success is not asserted: the policy's closed-loop rate is in its README.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import REPO, fresh_domain_id

from executor_bringup.mcap_to_lerobot import read_recording

pytestmark = pytest.mark.ros
CHECKPOINT = "checkpoints/policy_sim/pretrained_model"
BIN = Path(sys.executable).parent


def test_the_committed_policy_drives_the_sim_arm_through_policy_node(tmp_path: Path) -> None:
    config = json.loads((REPO / CHECKPOINT / "config.json").read_text())
    assert config["type"] == "act"
    assert config["pretrained_backbone_weights"] is None
    domain = str(fresh_domain_id())
    env = {
        **os.environ,
        "MUJOCO_GL": "egl",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "ROS_DOMAIN_ID": domain,
    }
    launch_log = tmp_path / "launch.log"
    sets = [
        f"policy={CHECKPOINT}",
        f"policy_node.record_dir={tmp_path / 'recordings'}",
        f"policy_node.video_dir={tmp_path / 'videos'}",
    ]
    args = [str(BIN / "executor-bringup"), "sim", "--domain-id", domain]
    for s in sets:
        args += ["--set", s]
    with launch_log.open("w") as log:
        launcher = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        task = subprocess.run(
            [
                str(BIN / "executor-run-task"),
                "put the red cube in the bowl",
                "--server-wait",
                "150",
                "--timeout",  # the goal's timeout
                "8",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
    logs = launch_log.read_text()
    out = task.stdout + task.stderr
    sys.stderr.write(logs[-4000:] + out[-2000:])
    # loaded, with the chunk length it was evaluated with (its config's n_action_steps)
    assert f"configured: policy '{CHECKPOINT}' (ACTPolicy), 4 actions per chunk at 10 Hz" in logs
    # 0: the sim's verifier said done; 1: the goal ended (here: its 8 s timeout)
    assert task.returncode in (0, 1), out
    if task.returncode == 1:
        assert "goal timeout of 8 s exceeded" in out
    assert "executing" in out  # feedback: chunks went to the arm
    points = int(out.split("trajectory points: ")[1].split()[0])
    assert points >= 8  # at least two chunks of 4 actions
    (recording,) = (tmp_path / "recordings").glob("*.mcap")
    # the recorded joint states: the simulated arm really moved under the policy
    rec = read_recording(recording, "/", 64)
    assert rec.prompt == "put the red cube in the bowl"
    q = np.stack(rec.joint_q)
    assert len(q) >= 20
    assert float(np.max(np.abs(q - q[0]))) > 0.05  # rad
    executed = list((tmp_path / "videos").glob("*_executed.mp4"))
    assert len(executed) == 1
    assert launcher.returncode == 0
