#!/bin/bash
# candidate check on VALIDATION held_out items 48-191 (PREREGISTERED.txt, ~22:55 UTC): bash run_check.sh <step>
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim s=$1
E="--splits held_out --seed_set validation --first_item 48 --num_episodes 144 --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
.venv/bin/executor-dreamgen --conditions committed_hpx_expert_plus_executed=$R/fp16_hpx015000/expert_plus_executed/pretrained_model $E \
    --output $R/checkhpx1440/committed.json --report_dir $R/checkhpx1440/committed > $R/checkhpx1440_committed.log 2>&1 &
.venv/bin/executor-dreamgen --conditions hpx1440_expert_plus_executed=$R/fp16_hpx1440_$s/pretrained_model $E \
    --output $R/checkhpx1440/candidate.json --report_dir $R/checkhpx1440/candidate > $R/checkhpx1440_candidate.log 2>&1 &
wait
echo done
