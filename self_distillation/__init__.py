"""The method: task proposal, demonstration generation, self-distillation, GRPO, evaluation.

Stages and their console scripts are described in docs/method.md.
"""
