"""Offline checkpoints, written with ``save_pretrained`` and loaded back through ``from_pretrained``:

* tiny random-init ones (tests, ``validate``, ``--smoke-test``): the real architecture's config with only
  its sizes shrunk (``Arch.tiny``), so every behaviour-changing default is the real one;
* real-size random-init stand-ins (``Arch.real``): the benchmark's large pairs when the published
  weights are not in the local Hugging Face cache and cannot be downloaded, so that parameter counts,
  memory and latency are real. Their scores mean nothing.

Text checkpoints get a small tokenizer trained on the demo corpus's vocabulary, of the family's kind:
WordPiece for the encoder models (their generic fast tokenizer loads it as saved), byte-level BPE for the
decoder LLMs, with the family's special tokens (Qwen2 adds none, Llama 3 a ``<|begin_of_text|>``): a
Qwen2 checkpoint is read by transformers' own ``Qwen2Tokenizer``, which would read a WordPiece vocabulary
as a character-level BPE with wrong offsets, and the last-token pooling of an LLM reads the last real token.
"""

from __future__ import annotations

import logging
from pathlib import Path

from filelock import FileLock

from harness.corpus.demo import FILLERS, WORD_GROUPS
from harness.models.variants import EncoderVariant
from harness.paths import default_cache_dir

log = logging.getLogger(__name__)
# Config keys a tiny recipe may change: sizes only.
SIZE_KEYS = frozenset(
    {
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "embedding_size",
        "conv_dim",
        "conv_stride",
        "conv_kernel",
        "num_conv_pos_embeddings",
        "num_conv_pos_embedding_groups",
        "conv_pos_kernel_size",
        "position_buckets",
        "vocab_size",
        "max_position_embeddings",
        # Whisper (encoder and decoder sizes) and decoder LLMs (grouped-query heads, sliding-window layers)
        "d_model",
        "encoder_layers",
        "encoder_attention_heads",
        "encoder_ffn_dim",
        "decoder_layers",
        "decoder_attention_heads",
        "decoder_ffn_dim",
        "num_key_value_heads",
        "max_window_layers",
        "head_dim",
    }
)


def _config(
    variant: EncoderVariant, size: str, vocab_size: int | None = None, pad_id: int | None = None, **ids: int | None
):
    import transformers

    assert variant.arch is not None, f"{variant.name} has no offline recipe"
    values = dict(variant.arch.real)
    if size == "stand_in":
        values |= variant.arch.stand_in
    if size == "tiny":
        values |= variant.arch.tiny
        if vocab_size is not None:
            values |= {"vocab_size": vocab_size, "pad_token_id": pad_id} | ids
    return getattr(transformers, variant.arch.config_class)(**values)


# Decoder-LLM families: their special tokens (first in the tiny vocabulary) and what their tokenizer adds.
LLM_SPECIALS = {
    "qwen2": (("<|endoftext|>",), None),  # pad and eos; nothing added around a text
    "llama": (("<|begin_of_text|>", "<|end_of_text|>"), "<|begin_of_text|>"),  # bos added before a text
}


def _llm_tokenizer(model_type: str):
    """A byte-level BPE tokenizer over the demo vocabulary with ``model_type``'s special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials, bos = LLM_SPECIALS[model_type]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    texts = [" ".join(group) for group in WORD_GROUPS] + [" ".join(FILLERS)]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tokenizer.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=400, special_tokens=list(specials), initial_alphabet=alphabet)
    )
    if bos is not None:
        bos_id = tokenizer.token_to_id(bos)
        tokenizer.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, bos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=specials[-1], eos_token=specials[-1], bos_token=specials[0]
    )


def _tokenizer(pad_id: int):
    """A WordPiece tokenizer over the demo vocabulary with [PAD] at the id the model's config expects."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[CLS]", "[SEP]", "[UNK]"]
    specials.insert(pad_id, "[PAD]")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    texts = [" ".join(group) for group in WORD_GROUPS] + [" ".join(FILLERS)]
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )


def write_checkpoint(variant: EncoderVariant, out: Path, size: str) -> Path:
    """Write a random-init ``size`` ("tiny" or "real") checkpoint of ``variant`` to ``out``. A real-size one
    takes ``Arch.stand_in`` (parts the encoder never loads, shrunk)."""
    from transformers import AutoModel, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    out.mkdir(parents=True, exist_ok=True)
    size = "stand_in" if size == "real" else size
    if variant.modality == "text" and variant.arch is not None and variant.arch.model_type in LLM_SPECIALS:
        tokenizer = _llm_tokenizer(variant.arch.model_type)
        tokenizer.save_pretrained(out)
        # a tiny vocabulary has its own special ids (the real ones lie beyond it)
        ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
        if size == "tiny":
            config = _config(variant, size, len(tokenizer), tokenizer.pad_token_id, **ids)
        else:
            config = _config(variant, size)
    elif variant.modality == "text":
        pad_id = _config(variant, "real").pad_token_id or 0
        tokenizer = _tokenizer(pad_id)
        tokenizer.save_pretrained(out)
        config = _config(variant, size, len(tokenizer), pad_id) if size == "tiny" else _config(variant, size)
    elif variant.arch is not None and variant.arch.config_class == "WhisperConfig":
        config = _config(variant, size)
        WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(out)
    else:
        config = _config(variant, size)
        Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(out)
    AutoModel.from_config(config).save_pretrained(out)
    return out


def ensure_checkpoint(variant: EncoderVariant, size: str, cache_dir: str | Path | None = None) -> Path:
    """Build ``variant``'s offline checkpoint of ``size`` once under the cache; returns its folder."""
    base = Path(cache_dir or default_cache_dir()) / f"{size}_models"
    base.mkdir(parents=True, exist_ok=True)
    out = base / variant.name
    with FileLock(str(base / f".{variant.name}.lock")):
        if not (out / "config.json").exists():
            log.info("building a %s random-init %s checkpoint in %s", size, variant.name, out)
            write_checkpoint(variant, out.with_name(out.name + ".tmp"), size).rename(out)
    return out


def tiny_overrides(variants: dict[str, EncoderVariant], cache_dir: str | Path | None = None) -> dict[str, str]:
    """Config overrides pointing each pretrained encoder of a pair at its tiny checkpoint."""
    return {f"{m}.model": str(ensure_checkpoint(v, "tiny", cache_dir)) for m, v in variants.items() if v.pretrained}
