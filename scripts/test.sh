#!/usr/bin/env bash
# The test command (README and CI): lint, then the default test selection (markers gpu,
# slow and hardware are deselected in pyproject.toml). Extra arguments go to pytest, e.g.
#   scripts/test.sh tests/executor_bringup -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1
export MUJOCO_GL="${MUJOCO_GL:-egl}"

.venv/bin/ruff check --output-format concise .
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    # pytest's "no tests were collected": not a failure of the code, but say so loudly.
    echo "test: WARNING: pytest collected no tests (exit 5) for: ${*:-the default selection}" >&2
    exit 0
fi
exit $rc
