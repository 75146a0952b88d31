#!/usr/bin/env bash
# Sourced by the GPU scripts (scripts/grpo_variants_gpu.sh, scripts/sft_gpu.sh): on the device
# machine (PYTHON unset) it unpacks the carried site packages (.whl/site.tar.xz, the SO-101
# model files) into /tmp/site and the EGL loaders (.gl/*.deb), once per machine (a marker
# file), and puts them on PYTHONPATH; here (PYTHON set, e.g. .venv/bin/python) it does nothing
# but the environment. Then it checks that MuJoCo renders and the simulator builds.
# Sets: py (the interpreter). .whl and .gl: scripts/prepare_gpu_inputs.sh makes them.
py="${PYTHON:-python3}"
if [ -z "${PYTHON:-}" ]; then
  if [ ! -e /tmp/site/.unpacked ]; then
    mkdir -p /tmp/site && tar xJf .whl/site.tar.xz -C /tmp/site \
      && tar xJf .whl/so101.tar.xz -C /tmp/site || return 1
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    touch /tmp/site/.unpacked
  fi
  export PYTHONPATH="/tmp/site:$PWD"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
export MUJOCO_GL="${MUJOCO_GL:-egl}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
"$py" -c "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); \
r = mujoco.Renderer(m, 64, 64); r.update_scene(mujoco.MjData(m)); print('render', r.render().shape); r.close(); \
from executor_sim.env import EnvConfig, make_env; make_env(EnvConfig(image_size_px=64)); print('sim ok')" \
  || return 1
# wait_named OUT_DIR NAME:PID ...: wait for every job; a failed one is named, with the tail of
# its log (OUT_DIR/NAME.log). Returns 1 if any failed.
wait_named() {
  local out="$1" rc=0 spec
  shift
  for spec in "$@"; do
    wait "${spec#*:}" || { rc=1; echo "${spec%%:*} failed"; tail -20 "$out/${spec%%:*}.log"; }
  done
  return "$rc"
}
