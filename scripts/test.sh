#!/usr/bin/env bash
# The test command (README and CI): lint, then the default test selection (markers gpu,
# slow and hardware are deselected in pyproject.toml). Extra arguments go to pytest, e.g.
#   scripts/test.sh tests/executor_bringup -x
# The tests run in TEST_WORKERS pytest-xdist processes (default 2, the CI machine's cores;
# TEST_WORKERS=0 runs them in this process). Most of the suite waits on subprocesses and
# DDS, so two workers on two cores take about 0.6x the serial time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1
export MUJOCO_GL="${MUJOCO_GL:-egl}"
workers="${TEST_WORKERS:-2}"
if ! [[ $workers =~ ^[0-9]+$ ]]; then
    echo "test: TEST_WORKERS must be a whole number, got '$workers'" >&2
    exit 2
fi

.venv/bin/ruff check --output-format concise .
set +e
.venv/bin/python -m pytest -q -n "$workers" "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    # pytest's "no tests were collected": not a failure of the code, but say so loudly.
    echo "test: WARNING: pytest collected no tests (exit 5) for: ${*:-the default selection}" >&2
    exit 0
fi
exit $rc
