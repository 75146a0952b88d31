#!/bin/bash
# report seeds for the qualifying run (PREREGISTERED.txt, 2026-11-27 20:49 UTC): bash run_hpx_report.sh <condition> <step>
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim c=$1 s=$2
C=hp_expert_only=$R/fp16_hp020000/expert_only/pretrained_model
C=$C,hpx_$c=$R/fp16_hpx$s/$c/pretrained_model
for sp in held_out novel_behaviour novel_environment; do
  .venv/bin/executor-dreamgen --conditions "$C" --splits $sp --num_episodes 48 --max_steps 160 \
      --limit_tolerance_rad 0.2 --n_action_steps 4 --output $R/evalhpx/$sp.json \
      --report_dir $R/evalhpx/$sp > $R/evalhpx_$sp.log 2>&1 &
done; wait
echo done
