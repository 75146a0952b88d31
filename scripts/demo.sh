#!/usr/bin/env bash
# Bring up the simulated graph, send one task, print the result, shut everything down.
#   scripts/demo.sh ["put the red cube in the bowl"]
# Uses its own ROS domain (DEMO_DOMAIN_ID, default 77) so it does not meet other graphs.
# Exit code: the client's (0 = the task succeeded).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TASK="${1:-put the red cube in the bowl}"
DOMAIN_ID="${DEMO_DOMAIN_ID:-77}"
export HF_HUB_OFFLINE=1
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export ROS_DOMAIN_ID="$DOMAIN_ID"

[[ -x .venv/bin/executor-bringup ]] || { echo "demo: run scripts/install.sh first" >&2; exit 2; }

.venv/bin/executor-bringup sim --domain-id "$DOMAIN_ID" &
launcher=$!
stop_graph() {
    if kill -0 "$launcher" 2>/dev/null; then
        kill -INT "$launcher"
        wait "$launcher" || true
    fi
}
trap stop_graph EXIT

# The client waits for the action server itself (--server-wait); give the graph time to
# load the simulator and the models on a small CPU.
set +e
.venv/bin/executor-run-task "$TASK" --server-wait 60 --timeout "${DEMO_TIMEOUT_S:-300}"
rc=$?
set -e
echo "demo: executor-run-task exited with $rc"
exit $rc
