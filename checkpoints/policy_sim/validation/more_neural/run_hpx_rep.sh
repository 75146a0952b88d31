#!/bin/bash
# replication on fresh held-out items (PREREGISTERED.txt, 2026-11-27 ~21:59 UTC)
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim sp=${1:-held_out}
F=${2:-48} N=${3:-144} D=${4:-rephpx}
E="--splits $sp --first_item $F --num_episodes $N --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
.venv/bin/executor-dreamgen --conditions hp_expert_only=$R/fp16_hp020000/expert_only/pretrained_model $E \
    --output $R/$D/${sp}_eo.json --report_dir $R/$D/${sp}_eo > $R/${D}_${sp}_eo.log 2>&1 &
.venv/bin/executor-dreamgen --conditions hpx_expert_plus_executed=$R/fp16_hpx015000/expert_plus_executed/pretrained_model $E \
    --output $R/$D/${sp}_x.json --report_dir $R/$D/${sp}_x > $R/${D}_${sp}_x.log 2>&1 &
wait
echo done
