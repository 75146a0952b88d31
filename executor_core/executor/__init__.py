"""Video world models: the Demonstrator and the Executor (one pipeline class)."""

from executor_core.executor.configuration_executor import (
    MODEL_PRESETS,
    ExecutorModelConfig,
    LoraConfigSpec,
    TransformerConfig,
)
from executor_core.executor.pipeline_executor import ExecutorVideoOutput, ExecutorVideoPipeline

__all__ = [
    "MODEL_PRESETS",
    "ExecutorModelConfig",
    "ExecutorVideoOutput",
    "ExecutorVideoPipeline",
    "LoraConfigSpec",
    "TransformerConfig",
]
