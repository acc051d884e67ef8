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
WhisperEncoder = "harness.models.encoders.whisper:WhisperAudioEncoder"

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

# Large speech SSL models (the *-large configs): layer-norm feature encoders with stable layer norm (they
# take an attention mask, so their layer means batch exactly), 24 layers of 1024.
_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
_SPEECH_LARGE = _LARGE | dict(feat_extract_norm="layer", do_stable_layer_norm=True)
_TINY_SPEECH_LARGE = _TINY_SPEECH  # sizes only: norm type and the rest stay the real ones
# Whisper (config.json of openai/whisper-*): the encoder half is what loads; the decoder is kept real in
# the config (its sizes are the published ones) and shrunk only in a stand-in (``Arch.stand_in``).
_WHISPER = dict(vocab_size=51865, num_mel_bins=80, max_source_positions=1500, max_target_positions=448)


def _whisper(d_model: int, layers: int, heads: int, **extra: object) -> dict[str, object]:
    sizes = dict(encoder_layers=layers, encoder_attention_heads=heads, encoder_ffn_dim=4 * d_model)
    decoder = dict(decoder_layers=layers, decoder_attention_heads=heads, decoder_ffn_dim=4 * d_model)
    return _WHISPER | dict(d_model=d_model) | sizes | decoder | extra


_TINY_WHISPER = dict(
    d_model=32,
    encoder_layers=2,
    encoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_layers=1,
    decoder_attention_heads=2,
    decoder_ffn_dim=64,
)
_WHISPER_STAND_IN = dict(decoder_layers=1)  # the encoder never reads the decoder
# Qwen2.5-1.5B's config.json (the default decoder-LLM text encoder; ``--set qwen2_5.model=Qwen/Qwen2.5-7B``
# or a local folder for a larger one).
_QWEN2_5_1_5B = dict(
    vocab_size=151936,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=131072,
    max_window_layers=28,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    bos_token_id=151643,
    eos_token_id=151643,
)
# Llama-3.2-1B's config.json (gated on the hub: ``hf auth login`` first).
_LLAMA3_2_1B = dict(
    vocab_size=128256,
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=64,
    max_position_embeddings=131072,
    rope_parameters={
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    bos_token_id=128000,
    eos_token_id=128001,
)
_TINY_LLM = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)

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
    # -- the large side of 2026 ---------------------------------------------------------------------------
    EncoderVariant(
        "whisper",
        "audio",
        WhisperEncoder,
        "openai/whisper-large-v3",
        Arch(
            "WhisperConfig",
            real=_whisper(1280, 32, 20, num_mel_bins=128, vocab_size=51866),
            tiny=_TINY_WHISPER,
            stand_in=_WHISPER_STAND_IN,
        ),
        note="encoder of Whisper-large-v3 (637 M), at the utterance's length (harness.models.encoders.whisper)",
    ),
    EncoderVariant(
        "whisper_30s",
        "audio",
        WhisperEncoder,
        "openai/whisper-large-v3",
        Arch(
            "WhisperConfig",
            real=_whisper(1280, 32, 20, num_mel_bins=128, vocab_size=51866),
            tiny=_TINY_WHISPER,
            stand_in=_WHISPER_STAND_IN,
        ),
        options=(("window", "30s"),),
        note="Whisper-large-v3 as trained: every utterance padded to a 30-s window (cost of 30 s each)",
    ),
    EncoderVariant(
        "whisper_medium",
        "audio",
        WhisperEncoder,
        "openai/whisper-medium",
        Arch("WhisperConfig", real=_whisper(1024, 24, 16), tiny=_TINY_WHISPER, stand_in=_WHISPER_STAND_IN),
    ),
    EncoderVariant(
        "whisper_small",
        "audio",
        WhisperEncoder,
        "openai/whisper-small",
        Arch("WhisperConfig", real=_whisper(768, 12, 12), tiny=_TINY_WHISPER, stand_in=_WHISPER_STAND_IN),
    ),
    EncoderVariant(
        "wavlm_large",
        "audio",
        AudioEncoder,
        "microsoft/wavlm-large",
        Arch("WavLMConfig", real=_SPEECH_LARGE | dict(conv_bias=False), tiny=_TINY_SPEECH_LARGE),
    ),
    EncoderVariant(
        "hubert_large",
        "audio",
        AudioEncoder,
        "facebook/hubert-large-ll60k",
        Arch("HubertConfig", real=_SPEECH_LARGE | dict(conv_bias=True), tiny=_TINY_SPEECH_LARGE),
    ),
    EncoderVariant(
        "data2vec_audio_large",
        "audio",
        AudioEncoder,
        "facebook/data2vec-audio-large",
        Arch(
            "Data2VecAudioConfig",
            real=_LARGE,
            tiny=_TINY_SPEECH | dict(num_conv_pos_embeddings=2, conv_pos_kernel_size=5),
        ),
    ),
    EncoderVariant(
        "roberta_large",
        "text",
        TextEncoder,
        "roberta-large",
        Arch("RobertaConfig", real=_ROBERTA_BASE | _LARGE, tiny=_TINY_TEXT),
    ),
    EncoderVariant(
        "deberta_v3_large",
        "text",
        TextEncoder,
        "microsoft/deberta-v3-large",
        Arch("DebertaV2Config", real=_DEBERTA_V3_BASE | _LARGE, tiny=_TINY_TEXT | dict(position_buckets=32)),
    ),
    EncoderVariant(
        "qwen2_5",
        "text",
        TextEncoder,
        "Qwen/Qwen2.5-1.5B",
        Arch("Qwen2Config", real=_QWEN2_5_1_5B, tiny=_TINY_LLM | dict(num_key_value_heads=2, max_window_layers=2)),
        options=(("pooling", "mean"),),
        note="decoder LLM Qwen2.5-1.5B, mean over tokens (option pooling=last: the last token); larger by --set",
    ),
    EncoderVariant(
        "llama3_2",
        "text",
        TextEncoder,
        "meta-llama/Llama-3.2-1B",
        Arch("LlamaConfig", real=_LLAMA3_2_1B, tiny=_TINY_LLM | dict(num_key_value_heads=1, head_dim=8)),
        options=(("pooling", "mean"),),
        note="decoder LLM (1.2 B, gated: hf auth login), mean over tokens",
    ),
]:
    register(_variant)

# emotion2vec (Ma et al. 2024; 71.79 WA on IEMOCAP in EmoBox) is not registered: its checkpoints are
# fairseq/FunASR ones (emotion2vec/emotion2vec_base, _plus_large), with no transformers config or model class,
# so AutoModel cannot load them. docs/encoders.md says so.


class UnknownEncoderError(UserError):
    pass


def get_encoder(name: str) -> EncoderVariant:
    if name not in ENCODERS:
        raise UnknownEncoderError(
            f"unknown encoder {name!r}{did_you_mean(name, list(ENCODERS))}; known: {', '.join(ENCODERS)}"
        )
    return ENCODERS[name]
