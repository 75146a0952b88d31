#!/bin/bash
# the test seed set (PREREGISTERED.txt, ~22:55 UTC): bash run_test.sh <step> [split first_item n dir]
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim s=$1 sp=${2:-held_out} F=${3:-0} N=${4:-600} D=${5:-testhpx1440}
E="--splits $sp --seed_set test --first_item $F --num_episodes $N --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
.venv/bin/executor-dreamgen --conditions hp_expert_only=$R/fp16_hp020000/expert_only/pretrained_model $E \
    --output $R/$D/${sp}_eo.json --report_dir $R/$D/${sp}_eo > $R/${D}_${sp}_eo.log 2>&1 &
.venv/bin/executor-dreamgen --conditions hpx1440_expert_plus_executed=$R/fp16_hpx1440_$s/pretrained_model $E \
    --output $R/$D/${sp}_x.json --report_dir $R/$D/${sp}_x > $R/${D}_${sp}_x.log 2>&1 &
wait
C=hp_expert_only=$R/fp16_hp020000/expert_only/pretrained_model
C=$C,hpx1440_expert_plus_executed=$R/fp16_hpx1440_$s/pretrained_model
.venv/bin/executor-dreamgen --conditions "$C" $E --merge_from $R/$D/${sp}_eo,$R/$D/${sp}_x \
    --output $R/$D/${sp}.json --report_dir $R/$D/$sp > $R/${D}_${sp}_merge.log 2>&1
echo done
