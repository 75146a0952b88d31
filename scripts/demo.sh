#!/usr/bin/env bash
# Bring up the simulated graph, send one task, print the result and the path of the goal's
# recording (MCAP: open it in Foxglove, `ros2 bag info`, or convert it with
# executor-mcap-to-lerobot), shut everything down.
#   scripts/demo.sh ["put the red cube in the bowl"]
# Uses its own ROS domain (DEMO_DOMAIN_ID, default 77) so it does not meet other graphs.
# Recordings go to DEMO_RECORD_DIR (default /tmp/executor_recordings, executor_node's).
# Exit code: the client's (0 = the task succeeded).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TASK="${1:-put the red cube in the bowl}"
DOMAIN_ID="${DEMO_DOMAIN_ID:-77}"
RECORD_DIR="$(realpath -m "${DEMO_RECORD_DIR:-/tmp/executor_recordings}")"
export HF_HUB_OFFLINE=1
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export ROS_DOMAIN_ID="$DOMAIN_ID"
# Fast DDS transports: every process below applies the stack's one default itself
# (executor_bringup/dds_transport.py: config/fastdds_profile.xml unless you exported a
# profile file or FASTDDS_BUILTIN_TRANSPORTS), the camera wait too.

[[ -x .venv/bin/executor-bringup ]] || { echo "demo: run scripts/install.sh first" >&2; exit 2; }

.venv/bin/executor-bringup sim --domain-id "$DOMAIN_ID" \
    --set "executor_node.record_dir=$RECORD_DIR" &
launcher=$!
started="$(mktemp)"  # recordings newer than this one are the demo's
stop_graph() {
    if kill -0 "$launcher" 2>/dev/null; then
        kill -INT "$launcher"
        wait "$launcher" || true
    fi
    rm -f "$started"
}
trap stop_graph EXIT

# The executor needs a camera image before it can accept a task, and loading the simulator
# and the models takes a while on a small CPU: wait for the first image_raw message.
echo "demo: waiting for the simulated camera (image_raw) ..."
.venv/bin/python - "${DEMO_STARTUP_TIMEOUT_S:-180}" <<'PY'
import sys, time
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from executor_bringup.dds_transport import apply_default_transports
apply_default_transports()  # before rclpy.init: the nodes' transports
rclpy.init()
node = rclpy.create_node("demo_wait_for_camera")
got = []
node.create_subscription(Image, "image_raw", got.append, qos_profile_sensor_data)
deadline = time.monotonic() + float(sys.argv[1])
while not got and time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.2)
sys.exit(0 if got else f"demo: no image on image_raw after {sys.argv[1]} s; see the node logs above")
PY

set +e
.venv/bin/executor-run-task "$TASK" --server-wait 60 --timeout "${DEMO_TIMEOUT_S:-300}"
rc=$?
set -e
echo "demo: executor-run-task exited with $rc"
# The file is complete before the result is sent; names start with the UTC time.
recording="$(find "$RECORD_DIR" -maxdepth 1 -name '*.mcap' -newer "$started" 2>/dev/null |
    sort | tail -n 1)"
if [[ -n "$recording" ]]; then
    echo "demo: recording: $recording"
    echo "demo:   open it in Foxglove, or: ros2 bag info $recording"
    echo "demo:   as a LeRobotDataset: .venv/bin/executor-mcap-to-lerobot --recordings=$recording --root=outputs/recorded_demo --overwrite=true"
else
    echo "demo: no recording found in $RECORD_DIR (see the executor_node log above)" >&2
fi
exit $rc
