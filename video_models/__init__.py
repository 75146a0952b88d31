"""Video world models: the Demonstrator and the Executor (one pipeline class)."""

from video_models.configuration_executor import (
    MODEL_PRESETS,
    ExecutorModelConfig,
    LoraConfigSpec,
    TransformerConfig,
)
from video_models.pipeline_executor import ExecutorVideoOutput, ExecutorVideoPipeline

__all__ = [
    "MODEL_PRESETS",
    "ExecutorModelConfig",
    "ExecutorVideoOutput",
    "ExecutorVideoPipeline",
    "LoraConfigSpec",
    "TransformerConfig",
]
