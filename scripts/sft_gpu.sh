#!/usr/bin/env bash
# Issue 14, the SFT baseline given the method's compute, on one GPU machine. SFT = the
# Demonstrator (checkpoints/demonstrator_sim) fine-tuned on the scripted expert's clips of
# the first 384 training items with the short prompt (self_distillation/sft_baseline.py;
# checkpoints/executor_sft_sim is its 200-step CPU run), batch 128, lr 2e-4 with 50 warm-up
# steps and a cosine to 10 %. One run per step count in STEPS, side by side on the GPU; the
# first renders the expert's clips, the others wait for them and reuse them. MINUTES caps
# each run's wall clock (the cosine then ends with the cap; sft_timings.json says how many
# steps were done).
# Here first: scripts/prepare_gpu_inputs.sh (the pack, .whl, .gl; about 2.5 min).
# On the GPU machine (carry outputs/wt/pack512 .whl .gl; the tree needs demonstrator_sim):
#   STEPS="800 3180" bash scripts/sft_gpu.sh "$OUT" 6
# Locally, a dry run of the same code path:
#   PYTHON=.venv/bin/python STEPS="2 3" RUN_DIR=/tmp/sft_dry bash scripts/sft_gpu.sh /tmp/sft_out 1 \
#       --demo_items 4 --distill_batch_size 2 --mixed_precision no
# Back: one archive per run (pipeline, configs, timings) and the logs.
# SHAPES="2x8x8 4x8x8" (issue 14 item 4, the shape race) trains each patch size from random
# weights instead of fine-tuning the Demonstrator, one run per shape and step count, all side
# by side with the same MINUTES cap (give a large STEPS so that the cap ends every run):
#   SHAPES="2x8x8 4x8x8" STEPS=40000 bash scripts/sft_gpu.sh "$OUT" 6
set -uo pipefail
out="${1:?usage: sft_gpu.sh OUT_DIR MINUTES [chain args...]}"
minutes="${2:?usage: sft_gpu.sh OUT_DIR MINUTES [chain args...]}"
shift 2
pack="${PACK:-outputs/wt/pack512}"
run="${RUN_DIR:-outputs/sft_gpu}"
# shellcheck disable=SC2206  # STEPS: a space-separated list of step counts
steps=(${STEPS:-800 3180})
for n in "${steps[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "sft_gpu: STEPS must be positive integers, got '$n'" >&2; exit 2; }
done
# shellcheck disable=SC2206  # SHAPES: a space-separated list of TxHxW patch sizes
shapes=(${SHAPES:-})
for shape in "${shapes[@]}"; do
  [[ $shape =~ ^[1-9][0-9]*x[1-9][0-9]*x[1-9][0-9]*$ ]] \
    || { echo "sft_gpu: SHAPES must be TxHxW patch sizes (e.g. 4x8x8), got '$shape'" >&2; exit 2; }
done
names=() ; extra=()  # one run each: its name and its own chain arguments
for n in "${steps[@]}"; do
  if [ ${#shapes[@]} -eq 0 ]; then
    names+=("sft_$n"); extra+=("--sft_steps $n")
  else
    for shape in "${shapes[@]}"; do
      names+=("scratch_${shape}_$n"); extra+=("--sft_steps $n --sft_patch_size ${shape//x/,}")
    done
  fi
done
# shellcheck source=scripts/gpu_setup.sh
source scripts/gpu_setup.sh || exit 1
mkdir -p "$out" "$run"
common=(--preset sim --stage sft --pack_dir "$pack" --demo_items 384 --sft_minutes "$minutes"
  --distill_batch_size 128 --distill_learning_rate 2e-4 --distill_warmup_steps 50)
first="$run/${names[0]}"
running=()
for i in "${!names[@]}"; do
  name="${names[$i]}"
  dir="$run/$name"
  # shellcheck disable=SC2206  # the run's own arguments, split on spaces
  own=(${extra[$i]})
  mkdir -p "$dir"
  if [ "$dir" != "$first" ]; then  # reuse the first run's clips once they are written
    (for _ in $(seq 600); do [ -f "$first/expert_prompt.npz" ] && break; sleep 1; done
     cp "$first/expert_prompt.npz" "$dir/" \
       && exec "$py" scripts/executor_gpu_chain.py "${common[@]}" --output_dir "$dir" \
         "${own[@]}" "$@") >"$out/$name.log" 2>&1 &
  else
    "$py" scripts/executor_gpu_chain.py "${common[@]}" --output_dir "$dir" "${own[@]}" "$@" \
      >"$out/$name.log" 2>&1 &
  fi
  running+=("$name:$!")
done
rc=0
wait_named "$out" "${running[@]}" || rc=1
for name in "${names[@]}"; do
  cat "$run/$name/sft_timings.json" 2>/dev/null; echo
  tar czf "$out/$name.tar.gz" -C "$run/$name" --ignore-failed-read executor_sft/pipeline \
    executor_sft/config.json sft_chain_config.json sft_timings.json 2>/dev/null || true
done
logs=(); for name in "${names[@]}"; do logs+=("$name.log"); done
tar czf "$out/sft_logs.tar.gz" -C "$out" "${logs[@]}"
( cd "$out" && rm -f "${logs[@]}" )
ls -la "$out"
exit "$rc"
