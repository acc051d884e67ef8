"""Tiny random-init wav2vec2 and ALBERT checkpoints, written with ``save_pretrained``.

Tests, ``harness.validate`` and ``--smoke-test`` load them back through the same ``from_pretrained``
path as the real checkpoints, with no network. Their scores mean nothing; their plumbing is real.
"""
from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from harness.demo import FILLERS, WORD_GROUPS


def make_tiny_wav2vec2(out: str | Path) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    out = Path(out)
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(32, 32, 32), conv_stride=(5, 4, 16), conv_kernel=(10, 4, 16),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                            feat_extract_norm="group", do_stable_layer_norm=False)
    Wav2Vec2Model(config).save_pretrained(out)  # strides 5*4*16 = 320 samples: 20 ms frames, as the real model
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(out)
    return out


def make_tiny_albert(out: str | Path, texts: list[str] | None = None) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import AlbertConfig, AlbertModel, PreTrainedTokenizerFast

    out = Path(out)
    texts = texts or [" ".join(group) for group in WORD_GROUPS] + [" ".join(FILLERS)]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]")
    fast.save_pretrained(out)
    config = AlbertConfig(vocab_size=tokenizer.get_vocab_size(), embedding_size=16, hidden_size=32,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          max_position_embeddings=160, pad_token_id=tokenizer.token_to_id("[PAD]"))
    AlbertModel(config).save_pretrained(out)
    return out


def ensure_tiny_models(cache_dir: str | Path) -> dict[str, str]:
    """Build both tiny checkpoints once under ``cache_dir``; returns config overrides pointing at them."""
    base = Path(cache_dir) / "tiny_models"
    base.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base / ".lock")):
        if not (base / "wav2vec2" / "config.json").exists():
            make_tiny_wav2vec2(base / "wav2vec2")
        if not (base / "albert" / "config.json").exists():
            make_tiny_albert(base / "albert")
    return {"audio.model": str(base / "wav2vec2"), "text.model": str(base / "albert")}
