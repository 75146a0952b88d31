#!/bin/bash
# The hand-frame runs (PREREGISTERED.txt, 2026-11-27 18:23 and 18:42 UTC), from the repo root:
#   bash checkpoints/policy_sim/validation/hand_centric/run_hand.sh hc gripper
#   bash checkpoints/policy_sim/validation/hand_centric/run_hand.sh hp grasp_point
# Trains <prefix>_expert_only and <prefix>_expert_plus_neural side by side (5,000 steps),
# exports step 5,000 to float16 and evaluates both on validation held_out (48 items).
set -euo pipefail
P="${1:?prefix, e.g. hc}"
FRAME="${2:?object frame: gripper or grasp_point}"
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim
T="--preset sim --steps 5000 --save_every 1000 --keep_checkpoints 6 --use_state false --neural_ratio 0.5 --backbone_weights $R/backbone"
F="--action_space grasp_relative --object_positions true --use_image false --object_frame $FRAME"
.venv/bin/executor-train-policy $T $F --output_dir $R/${P}_expert_only > $R/train_${P}_eo.log 2>&1 &
.venv/bin/executor-train-policy $T $F --output_dir $R/${P}_expert_plus_neural \
    --neural_root $R/neural/dataset > $R/train_${P}_neural.log 2>&1 &
wait
for c in expert_only expert_plus_neural; do
  .venv/bin/executor-export-policy --src $R/${P}_$c/checkpoints/step_005000/pretrained_model \
      --dst $R/fp16_$P/$c/pretrained_model
done
E="--splits held_out --seed_set validation --num_episodes 48 --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
for c in expert_only expert_plus_neural; do
  short=$([[ $c == expert_only ]] && echo eo || echo neural)
  .venv/bin/executor-dreamgen --conditions ${P}_$c=$R/fp16_$P/$c/pretrained_model $E \
      --output $R/val$P/$short.json --report_dir $R/val$P/$short > $R/val${P}_$short.log 2>&1 &
done
wait
echo done
