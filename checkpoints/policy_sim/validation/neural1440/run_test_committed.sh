#!/bin/bash
# the committed policy against expert-only on 600 items of the test seed set
# (PREREGISTERED.txt, 2026-11-28 ~00:25 UTC; the done-when's bar: the paired 97.5 % interval)
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim P=checkpoints/policy_sim D=testcommitted
E="--splits held_out --seed_set test --num_episodes 600 --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
C=hp_expert_only=$R/fp16_hp020000/expert_only/pretrained_model
X=hpx_expert_plus_executed=$R/fp16_hpx015000/expert_plus_executed/pretrained_model
.venv/bin/executor-dreamgen --conditions $C $E --output $R/$D/eo.json --report_dir $R/$D/eo > $R/${D}_eo.log 2>&1 &
.venv/bin/executor-dreamgen --conditions $X $E --output $R/$D/x.json --report_dir $R/$D/x > $R/${D}_x.log 2>&1 &
wait
.venv/bin/executor-dreamgen --conditions "$C,$X" $E --merge_from $R/$D/eo,$R/$D/x \
    --output $P/test/held_out600.json --report_dir $P/test/held_out600
V=$P/test/held_out600
for level in 0.975 0.95; do
  .venv/bin/python benchmarks/compare_neural_datasets.py --split held_out --level $level \
      --policy_runs hp_expert_only=$V/episodes.jsonl,hpx_expert_plus_executed=$V/episodes.jsonl \
      --output $V/by_family_${level#0.}.json
done
echo done
