#!/bin/bash
# more neural trajectories, hand frame (PREREGISTERED.txt, 2026-11-27 20:49 UTC)
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim
T="--preset sim --steps 20000 --save_every 1000 --keep_checkpoints 8 --use_state false --neural_ratio 0.5 --backbone_weights $R/backbone"
F="--action_space grasp_relative --object_positions true --use_image false --object_frame grasp_point"
.venv/bin/executor-train-policy $T $F --output_dir $R/hpx_expert_plus_executed --neural_root $R/neural480/dataset --neural_filter executed > $R/train_hpx_executed.log 2>&1 &
.venv/bin/executor-train-policy $T $F --output_dir $R/hpx_expert_plus_all --neural_root $R/neural480/dataset > $R/train_hpx_all.log 2>&1 &
wait
E="--splits held_out --seed_set validation --num_episodes 48 --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
for s in 015000 020000; do
  for c in expert_plus_executed expert_plus_all; do
    .venv/bin/executor-export-policy --src $R/hpx_$c/checkpoints/step_$s/pretrained_model --dst $R/fp16_hpx$s/$c/pretrained_model
    .venv/bin/executor-dreamgen --conditions hpx_${c}_step$s=$R/fp16_hpx$s/$c/pretrained_model $E --output $R/valhpx$s/$c.json --report_dir $R/valhpx$s/$c > $R/valhpx${s}_$c.log 2>&1 &
  done
  wait
done
echo done
