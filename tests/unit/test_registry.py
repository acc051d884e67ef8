"""The encoder registry as data: tiny recipes only shrink sizes, real configs have the published sizes, and
adding a variant or a pair is one registration that the conformance checks accept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import transformers

from harness.features import FeatureCache
from harness.models.encoders.registry import ENCODERS, get_encoder, register
from harness.models.pairs import PAIRS, PairSpec, get_pair, register_pair
from harness.models.tiny import SIZE_KEYS, _config, ensure_checkpoint, tiny_overrides
from harness.models.variants import Arch, EncoderVariant
from harness.tune.space import load_space

PRETRAINED = [name for name, v in ENCODERS.items() if v.pretrained]
# Keys a text checkpoint's tiny config also sets: its vocabulary is the demo tokenizer's.
TEXT_VOCAB_KEYS = frozenset({"vocab_size", "pad_token_id"})
# Keys transformers derives from size keys (checked to follow them, below).
DERIVED_SIZE_KEYS = frozenset({"output_hidden_size", "num_feat_extract_layers", "pooler_hidden_size", "layer_types"})
# Bookkeeping, not behaviour: who wrote the config and with which library.
BOOKKEEPING_KEYS = frozenset({"transformers_version", "_name_or_path", "architectures", "torch_dtype", "dtype"})


def real_config(name: str) -> transformers.PretrainedConfig:
    arch = get_encoder(name).arch
    return getattr(transformers, arch.config_class)(**arch.real)


def tiny_config(name: str) -> transformers.PretrainedConfig:
    """The config ``write_checkpoint`` builds for a tiny checkpoint (text: with the demo tokenizer's vocab)."""
    variant = get_encoder(name)
    if variant.modality == "text":
        return _config(variant, "tiny", 300, real_config(name).pad_token_id or 0)
    return _config(variant, "tiny")


@pytest.mark.parametrize("name", PRETRAINED)
def test_tiny_recipe_changes_sizes_only(name):
    variant = get_encoder(name)
    allowed = SIZE_KEYS | (TEXT_VOCAB_KEYS if variant.modality == "text" else frozenset())
    extra = set(variant.arch.tiny) - allowed
    assert not extra, f"{name}: tiny recipe sets non-size keys {extra}"


@pytest.mark.parametrize("name", PRETRAINED)
def test_tiny_config_behaves_like_the_real_one(name):
    """Every key of the config (dropouts, LayerDrop, SpecAugment masking, norm type, activation, relative
    attention ...) is the real config's, except sizes: a default added by a future transformers cannot slip."""
    real, tiny = real_config(name).to_dict(), tiny_config(name).to_dict()
    skip = (
        SIZE_KEYS
        | DERIVED_SIZE_KEYS
        | BOOKKEEPING_KEYS
        | (TEXT_VOCAB_KEYS if get_encoder(name).modality == "text" else frozenset())
    )
    differ = {k: (real.get(k), tiny.get(k)) for k in (set(real) | set(tiny)) - skip if real.get(k) != tiny.get(k)}
    assert not differ, f"{name}: tiny config differs from the real one in (real, tiny) {differ}"
    # derived sizes follow the size they derive from, in both
    for config in (real, tiny):
        for key, source in (("output_hidden_size", "hidden_size"), ("pooler_hidden_size", "hidden_size")):
            if key in config:
                assert config[key] == config[source], (name, key)
        if "num_feat_extract_layers" in config:
            assert config["num_feat_extract_layers"] == len(config["conv_dim"])
    if "layer_types" in real:  # decoder LLMs: one attention kind per layer, the same kinds in both
        assert set(real["layer_types"]) == set(tiny["layer_types"]), name
        assert len(tiny["layer_types"]) == tiny["num_hidden_layers"], name
    # the keys the issue names, spelled out so that a reader sees them checked
    for key in (
        "layerdrop",
        "mask_time_prob",
        "mask_feature_prob",
        "apply_spec_augment",
        "feat_extract_norm",
        "do_stable_layer_norm",
        "hidden_dropout",
        "attention_dropout",
        "activation_dropout",
        "feat_proj_dropout",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "hidden_act",
        "relative_attention",
        "position_biased_input",
        "pos_att_type",
    ):
        assert real.get(key) == tiny.get(key), (name, key)


@pytest.mark.parametrize("name, millions", [("wav2vec2", 94.4), ("albert", 11.7)])
def test_real_configs_have_the_published_sizes(name, millions):
    with torch.device("meta"):  # no memory, no init: shapes only
        model = transformers.AutoModel.from_config(real_config(name))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions


def test_a_pair_refuses_an_audio_encoder_in_the_text_slot():
    with pytest.raises(ValueError, match="'wav2vec2' is a audio encoder, not a text one"):
        PairSpec("broken", audio="cnn_bilstm", text="wav2vec2", space="broken.yaml")
    with pytest.raises(ValueError, match="has no encoder"):
        PairSpec("empty", audio=None, text=None, space="empty.yaml")


@contextmanager
def throwaway_pair(folder: Path) -> Iterator[PairSpec]:
    """A new text variant and a text-only pair over it, registered inside the block and removed after it."""
    variant = register(
        EncoderVariant(
            "tiny_bert_test",
            "text",
            "harness.models.encoders.pretrained:TextEncoder",
            "bert-base-uncased",
            Arch(
                "BertConfig",
                tiny={"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32},
            ),
        )
    )
    space = folder / "tiny_bert_test.yaml"
    space.write_text(
        "# a throwaway pair's space, at an absolute path\n"
        "fixed: {epochs: 2}\nsearch:\n  lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}\n"
    )
    pair = register_pair(PairSpec("tiny_bert_test", audio=None, text=variant.name, space=str(space)))
    try:
        yield pair
    finally:
        PAIRS.pop(pair.name, None)
        ENCODERS.pop(variant.name, None)


def test_a_registered_variant_and_pair_pass_the_conformance_checks(tmp_path, demo_manifest):
    from tests.conformance import test_pairs as checks  # the pair conformance checks, reused as functions

    before = (dict(ENCODERS), dict(PAIRS))
    with throwaway_pair(tmp_path) as pair:
        name = pair.name
        assert get_pair(name) is pair and get_encoder(name).modality == "text"
        assert load_space(pair.space_path).fixed == {"epochs": 2}  # an absolute space path is taken as is
        checkpoint = ensure_checkpoint(get_encoder(name), "tiny", tmp_path / "models")
        assert transformers.AutoConfig.from_pretrained(checkpoint).hidden_size == 16

        def tiny(pair_name: str) -> dict[str, str]:
            return tiny_overrides(get_pair(pair_name).variants, tmp_path / "models")

        cache = FeatureCache(tmp_path / "features")
        checks.test_forward_backward(name, tiny, cache, demo_manifest)
        checks.test_an_utterance_scores_the_same_alone_or_padded_in_a_batch(name, tiny, cache, demo_manifest)
        checks.test_cached_frozen_features_match_the_live_encoder(name, tiny, cache, demo_manifest)
    assert (ENCODERS, PAIRS) == before  # nothing left behind for other tests
