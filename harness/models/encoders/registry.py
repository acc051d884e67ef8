"""Every upstream encoder, one line each: name, modality, class, default checkpoint, offline recipe.

Adding HuBERT-large or DeBERTa-v3-large is one more line. ``real`` values are those of the published
checkpoint's config.json where they differ from the transformers class defaults; ``tiny`` only shrinks
sizes, so tests and smoke runs exercise the real configs' behaviour (LayerDrop, masking, norm type).
"""

from __future__ import annotations

from harness.config import did_you_mean
from harness.errors import UserError
from harness.models.variants import Arch, EncoderVariant

CNN_BILSTM = "harness.models.encoders.cnn_bilstm:CnnBiLstm"
WORD_BILSTM = "harness.models.encoders.bilstm:WordBiLstm"
AudioEncoder = "harness.models.encoders.pretrained:AudioEncoder"
TextEncoder = "harness.models.encoders.pretrained:TextEncoder"

# 320-sample frames like the real models (strides 5*4*16), in three conv layers instead of seven.
_TINY_SPEECH = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(32, 32, 32),
    conv_stride=(5, 4, 16),
    conv_kernel=(10, 4, 16),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)
_TINY_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
_ALBERT_BASE = dict(
    hidden_size=768,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
_ROBERTA_BASE = dict(
    vocab_size=50265,
    max_position_embeddings=514,
    type_vocab_size=1,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    layer_norm_eps=1e-5,
)
_DEBERTA_V3_BASE = dict(
    vocab_size=128100,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    relative_attention=True,
    position_buckets=256,
    norm_rel_ebd="layer_norm",
    share_att_key=True,
    pos_att_type=["p2c", "c2p"],
    position_biased_input=False,
    max_relative_positions=-1,
    type_vocab_size=0,
    layer_norm_eps=1e-7,
)

ENCODERS: dict[str, EncoderVariant] = {}


def register(variant: EncoderVariant) -> EncoderVariant:
    ENCODERS[variant.name] = variant
    return variant


for _variant in [
    EncoderVariant("cnn_bilstm", "audio", CNN_BILSTM),
    EncoderVariant("bilstm", "text", WORD_BILSTM),
    EncoderVariant(
        "wav2vec2", "audio", AudioEncoder, "facebook/wav2vec2-base", Arch("Wav2Vec2Config", tiny=_TINY_SPEECH)
    ),
    EncoderVariant(
        "hubert", "audio", AudioEncoder, "facebook/hubert-base-ls960", Arch("HubertConfig", tiny=_TINY_SPEECH)
    ),
    EncoderVariant("wavlm", "audio", AudioEncoder, "microsoft/wavlm-base-plus", Arch("WavLMConfig", tiny=_TINY_SPEECH)),
    EncoderVariant(
        "data2vec_audio",
        "audio",
        AudioEncoder,
        "facebook/data2vec-audio-base",
        Arch("Data2VecAudioConfig", tiny=_TINY_SPEECH | dict(num_conv_pos_embeddings=2, conv_pos_kernel_size=5)),
    ),
    EncoderVariant(
        "albert",
        "text",
        TextEncoder,
        "albert-base-v2",
        Arch("AlbertConfig", real=_ALBERT_BASE, tiny=_TINY_TEXT | dict(embedding_size=16)),
    ),
    EncoderVariant("bert", "text", TextEncoder, "bert-base-uncased", Arch("BertConfig", tiny=_TINY_TEXT)),
    EncoderVariant(
        "roberta", "text", TextEncoder, "roberta-base", Arch("RobertaConfig", real=_ROBERTA_BASE, tiny=_TINY_TEXT)
    ),
    EncoderVariant(
        "deberta_v3",
        "text",
        TextEncoder,
        "microsoft/deberta-v3-base",
        Arch("DebertaV2Config", real=_DEBERTA_V3_BASE, tiny=_TINY_TEXT | dict(position_buckets=32)),
    ),
]:
    register(_variant)


class UnknownEncoderError(UserError):
    pass


def get_encoder(name: str) -> EncoderVariant:
    if name not in ENCODERS:
        raise UnknownEncoderError(
            f"unknown encoder {name!r}{did_you_mean(name, list(ENCODERS))}; known: {', '.join(ENCODERS)}"
        )
    return ENCODERS[name]
