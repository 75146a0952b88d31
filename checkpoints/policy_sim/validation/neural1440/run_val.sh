#!/bin/bash
# step choice on VALIDATION held_out items 0-47 (PREREGISTERED.txt, ~22:55 UTC): bash run_val.sh 010000 015000 020000
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim
E="--splits held_out --seed_set validation --num_episodes 48 --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
for s in "$@"; do
  .venv/bin/executor-export-policy --src $R/hpx1440_expert_plus_executed/checkpoints/step_$s/pretrained_model \
      --dst $R/fp16_hpx1440_$s/pretrained_model
  .venv/bin/executor-dreamgen --conditions hpx1440_expert_plus_executed_step$s=$R/fp16_hpx1440_$s/pretrained_model $E \
      --output $R/valhpx1440/step$s.json --report_dir $R/valhpx1440/step$s > $R/valhpx1440_$s.log 2>&1 &
done
wait
echo done
