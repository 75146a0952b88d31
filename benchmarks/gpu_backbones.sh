#!/usr/bin/env bash
# GPU benchmark of the LTX-2 and HunyuanVideo-1.5 backbones (published dims, random
# weights, bf16): one LoRA training step, one video, the largest training batch.
# Prints JSON and writes it to $1. Bounded to 8 minutes. See benchmarks/gpu_backbones.py.
#   bash benchmarks/gpu_backbones.sh outputs/gpu_backbones.json
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-outputs/gpu_backbones.json}"
PY="${PYTHON:-.venv/bin/python}"
nvidia-smi --query-gpu=name,memory.total --format=csv || true
HF_HUB_OFFLINE=1 timeout 480 "$PY" benchmarks/gpu_backbones.py --out "$OUT" "${@:2}"
