#!/bin/bash
# hand-centric on proprioception (PREREGISTERED.txt, 2026-11-27 18:42 UTC)
set -e
export MUJOCO_GL=egl HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
R=outputs/policy_sim
T="--preset sim --steps 5000 --save_every 1000 --keep_checkpoints 6 --use_state false --neural_ratio 0.5 --backbone_weights $R/backbone"
F="--action_space grasp_relative --object_positions true --use_image false --object_frame grasp_point"
.venv/bin/executor-train-policy $T $F --output_dir $R/hp_expert_only > $R/train_hp_eo.log 2>&1 &
.venv/bin/executor-train-policy $T $F --output_dir $R/hp_expert_plus_neural --neural_root $R/neural/dataset > $R/train_hp_neural.log 2>&1 &
wait
for c in expert_only expert_plus_neural; do
  .venv/bin/executor-export-policy --src $R/hp_$c/checkpoints/step_005000/pretrained_model --dst $R/fp16_hp/$c/pretrained_model
done
E="--splits held_out --seed_set validation --num_episodes 48 --max_steps 160 --limit_tolerance_rad 0.2 --n_action_steps 4"
.venv/bin/executor-dreamgen --conditions hp_expert_only=$R/fp16_hp/expert_only/pretrained_model $E --output $R/valhp/eo.json --report_dir $R/valhp/eo > $R/valhp_eo.log 2>&1 &
.venv/bin/executor-dreamgen --conditions hp_expert_plus_neural=$R/fp16_hp/expert_plus_neural/pretrained_model $E --output $R/valhp/neural.json --report_dir $R/valhp/neural > $R/valhp_neural.log 2>&1 &
wait
echo done
