"""LoRA (Hu et al. 2021) on a pretrained backbone through ``peft``: every transformer layer's chosen linear
projections get a trainable low-rank update ``B A`` (rank ``r``, scaled by ``alpha / r``), the backbone's own
weights stay frozen. ``inject_adapter_in_model`` edits the module in place, so the encoder keeps reading the
backbone as before and the trainable parameters are exactly the adapters (plus the head).

Which projections, per family (``lora_targets``):

* ``attention``: query and value (the original paper's choice);
* ``attention_full``: query, key, value and the attention output;
* ``all_linear``: every linear layer of the backbone (peft's ``all-linear``), feed-forward included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.models.encoders.pretrained import Tuning

_SPEECH = (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "out_proj"])
_LLM = (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj"])
_BERT = (["query", "value"], ["query", "key", "value", "attention.output.dense"])
# model_type -> (attention, attention_full) module name suffixes
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "wav2vec2": _SPEECH,
    "hubert": _SPEECH,
    # WavLM's attention hands its projections' weights to torch's fused multi-head attention, so adapters on
    # them would never run: its adapters go on the feed-forward layers (both "attention" modes).
    "wavlm": (["intermediate_dense", "output_dense"], ["intermediate_dense", "output_dense", "gru_rel_pos_linear"]),
    "data2vec-audio": _SPEECH,
    "whisper": _SPEECH,
    "qwen2": _LLM,
    "llama": _LLM,
    "bert": _BERT,
    "roberta": _BERT,
    "albert": (["query", "value"], ["query", "key", "value", "attention.dense"]),
    "deberta-v2": (["query_proj", "value_proj"], ["query_proj", "key_proj", "value_proj", "attention.output.dense"]),
}


def target_modules(model_type: str, targets: str) -> list[str] | str:
    if targets == "all_linear":
        return "all-linear"
    if model_type not in TARGETS:
        raise ValueError(f"no LoRA targets known for model_type {model_type!r}; use lora_targets: all_linear")
    attention, full = TARGETS[model_type]
    return list(attention if targets == "attention" else full)


def add_lora(backbone: Any, tuning: Tuning) -> None:
    """Inject LoRA adapters into ``backbone`` in place; only they require gradients afterwards."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=tuning.lora_rank,
        lora_alpha=tuning.lora_alpha,  # type: ignore[arg-type]  # peft accepts a float scale
        lora_dropout=0.0,  # the backbone runs in eval mode (no dropout) whatever the head does
        target_modules=target_modules(backbone.config.model_type, tuning.lora_targets),
        bias="none",
    )
    inject_adapter_in_model(config, backbone)
    for name, parameter in backbone.named_parameters():
        parameter.requires_grad_("lora_" in name)
