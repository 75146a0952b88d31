"""Video world models: the Demonstrator and the Executor (one pipeline class).

Load a saved pipeline with ``ExecutorVideoPipeline.from_pretrained(folder).to(device)``; the
goal runner's callable is ``VideoWorldModel.from_pretrained(folder, device)``.
"""

from video_models.configuration_executor import (
    MODEL_PRESETS,
    ExecutorModelConfig,
    LoraConfigSpec,
    TransformerConfig,
)
from video_models.pipeline_executor import ExecutorVideoOutput, ExecutorVideoPipeline
from video_models.world_model import VideoWorldModel

__all__ = [
    "MODEL_PRESETS",
    "ExecutorModelConfig",
    "ExecutorVideoOutput",
    "ExecutorVideoPipeline",
    "LoraConfigSpec",
    "TransformerConfig",
    "VideoWorldModel",
]
