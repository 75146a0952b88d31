#!/bin/bash
# diagnostics on the candidate check's 144 validation items (PREREGISTERED.txt, ~00:14 UTC;
# no choice made from them): expert-only, and the candidate at step 20,000
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim
E="--splits held_out --seed_set validation --first_item 48 --num_episodes 144 --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
.venv/bin/executor-dreamgen --conditions hp_expert_only=$R/fp16_hp020000/expert_only/pretrained_model $E \
    --output $R/checkhpx1440/expert_only.json --report_dir $R/checkhpx1440/expert_only > $R/checkhpx1440_eo.log 2>&1 &
.venv/bin/executor-dreamgen --conditions hpx1440_expert_plus_executed_step020000=$R/fp16_hpx1440_020000/pretrained_model $E \
    --output $R/checkhpx1440/candidate_step20k.json --report_dir $R/checkhpx1440/candidate_step20k > $R/checkhpx1440_c20.log 2>&1 &
wait
# all four on the same items, paired against expert-only
C=hp_expert_only=$R/fp16_hp020000/expert_only/pretrained_model
C=$C,committed_hpx_expert_plus_executed=$R/fp16_hpx015000/expert_plus_executed/pretrained_model
C=$C,hpx1440_expert_plus_executed=$R/fp16_hpx1440_010000/pretrained_model
C=$C,hpx1440_expert_plus_executed_step020000=$R/fp16_hpx1440_020000/pretrained_model
M=$(for c in expert_only committed candidate candidate_step20k; do printf ",$R/checkhpx1440/$c"; done)
.venv/bin/executor-dreamgen --conditions "$C" $E --merge_from "${M#,}" \
    --output checkpoints/policy_sim/validation/neural1440/check144.json \
    --report_dir checkpoints/policy_sim/validation/neural1440/check144

V=checkpoints/policy_sim/validation/neural1440/check144
.venv/bin/python benchmarks/compare_neural_datasets.py --split held_out \
    --policy_runs hp_expert_only=$V/episodes.jsonl,committed_hpx_expert_plus_executed=$V/episodes.jsonl,hpx1440_expert_plus_executed=$V/episodes.jsonl,hpx1440_expert_plus_executed_step020000=$V/episodes.jsonl \
    --output $V/by_family.json
echo done
