"""ASR transcripts in place of the gold ones (``--text-source asr``), transcribed once into the feature cache.

The model is a ``--set text.asr_model=...`` value: a Whisper checkpoint (hub name, cached offline, or a local
folder), ``openai/whisper-small`` by default (English, 244 M parameters; ``openai/whisper-large-v3`` is more
accurate and about six times slower). Decoding is greedy, English, transcription task, no timestamps, at
most ``MAX_NEW_TOKENS`` tokens, as ``WhisperForConditionalGeneration.generate`` does with the checkpoint's
own generation config (its suppressed tokens included). Whisper reads 30-s windows: an utterance longer
than 30 s is transcribed from its first 30 s (IEMOCAP has a handful); the count is logged.

Every utterance of the corpus (not only one run's rows) is transcribed once per (model, audio) and stored
as a ``FeatureSpec("asr")`` folder of the feature cache, keyed on the audio files only, so changing the
class set, subset or gold text never transcribes again. An empty hypothesis (silence, a laugh) becomes the
text ``[NO_SPEECH]``: a text encoder needs a token, and the gold transcripts mark non-speech the same way
(``[LAUGHTER]``); WER is computed on the empty hypothesis, never on the marker.

``write_tiny_whisper`` builds the random-init checkpoint tests and ``--smoke-test`` use: whisper-small's
config with only its sizes shrunk, a byte-level BPE tokenizer over the demo vocabulary with Whisper's
special tokens, and a generation config that suppresses the special tokens as the real one does.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pandas as pd
from filelock import FileLock

from harness.errors import UserError
from harness.features.cache import FeatureCache, corpus_fingerprint
from harness.features.frontends import load_audio
from harness.features.spec import FeatureSpec
from harness.paths import default_cache_dir

log = logging.getLogger(__name__)

TEXT_SOURCES: tuple[str, ...] = ("gold", "asr")
DEFAULT_ASR_MODEL = "openai/whisper-small"
LANGUAGE = "en"
SAMPLE_RATE = 16_000
WINDOW_S = 30.0
MAX_NEW_TOKENS = 128
BATCH_SIZE = 8
NO_SPEECH = "[NO_SPEECH]"
GOLD_COLUMN = "gold_text"  # the gold transcript, kept beside an ASR ``text`` for WER
# whisper-small's config.json (openai/whisper-small); the tiny recipe changes sizes only.
WHISPER_SMALL: dict[str, Any] = dict(
    vocab_size=51865,
    num_mel_bins=80,
    d_model=768,
    encoder_layers=12,
    encoder_attention_heads=12,
    encoder_ffn_dim=3072,
    decoder_layers=12,
    decoder_attention_heads=12,
    decoder_ffn_dim=3072,
    max_source_positions=1500,
    max_target_positions=448,
)
TINY_SIZES: dict[str, Any] = dict(
    d_model=32,
    encoder_layers=2,
    encoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_layers=1,
    decoder_attention_heads=2,
    decoder_ffn_dim=64,
    max_target_positions=32,
)
WHISPER_SPECIALS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
)


class AsrError(UserError):
    """An ASR model that cannot be loaded, or a text source that does not apply."""


@dataclass(frozen=True)
class Transcripts:
    """One hypothesis per utterance id, and where they came from."""

    model: str
    text: dict[str, str]  # utterance id -> hypothesis ("" when the model heard nothing)
    truncated: int  # utterances longer than the 30-s window (transcribed from their first 30 s)


def asr_spec(model: str) -> FeatureSpec:
    return FeatureSpec.make("asr", model=model, language=LANGUAGE)


def audio_fingerprint(rows: pd.DataFrame) -> str:
    """Keyed on ids and audio files only: the gold text does not change what ASR hears."""
    return corpus_fingerprint(rows.assign(text=""))


class _Whisper:
    def __init__(self, model: str):
        try:
            from transformers import WhisperForConditionalGeneration, WhisperProcessor

            self.processor = WhisperProcessor.from_pretrained(model)
            self.model = WhisperForConditionalGeneration.from_pretrained(model).eval()
        except (OSError, ValueError) as err:
            raise AsrError(
                f"--set text.asr_model={model}: cannot load a Whisper checkpoint ({str(err).splitlines()[0][:200]}); "
                "name a local folder or a model in the Hugging Face cache (there is no network)"
            ) from None
        config = self.model.generation_config
        self.language = LANGUAGE if getattr(config, "is_multilingual", False) else None
        # the prompt and the generated tokens share the decoder's positions
        self.max_new_tokens = min(MAX_NEW_TOKENS, self.model.config.max_target_positions - 8)

    def __call__(self, audio: list[np.ndarray]) -> list[str]:
        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        tokens = self.greedy(features.input_features)
        return [t.strip() for t in self.processor.tokenizer.batch_decode(tokens, skip_special_tokens=True)]

    def greedy(self, features: Any) -> Any:
        """Greedy decoding after Whisper's prompt (start, language, transcribe, no timestamps), with the
        generation config's suppressed tokens: what ``generate`` does for a short-form utterance without
        timestamps, written out because ``generate`` ran past ``max_new_tokens`` here (transformers 5.25)."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        config = self.model.generation_config
        prompt = [config.decoder_start_token_id]
        if self.language:
            prompt += [config.lang_to_id[f"<|{self.language}|>"], config.task_to_id["transcribe"]]
        prompt += [config.no_timestamps_token_id]
        eos = config.eos_token_id
        suppress = list(config.suppress_tokens or [])
        begin_suppress = list(config.begin_suppress_tokens or [])
        batch = features.shape[0]
        with torch.inference_mode():
            encoded = BaseModelOutput(last_hidden_state=self.model.get_encoder()(features).last_hidden_state)
            step_input = torch.tensor([prompt] * batch)
            done = torch.zeros(batch, dtype=torch.bool)
            past, out = None, []
            for step in range(self.max_new_tokens):
                result = self.model(encoder_outputs=encoded, decoder_input_ids=step_input, cache=past, use_cache=True)
                logits, past = result.logits[:, -1].float(), result.past_key_values
                logits[:, suppress] = -float("inf")
                if step == 0:
                    logits[:, begin_suppress] = -float("inf")
                token = torch.where(done, torch.full_like(done, eos, dtype=torch.long), logits.argmax(-1))
                out.append(token)
                done |= token == eos
                if bool(done.all()):
                    break
                step_input = token[:, None]
        return torch.stack(out, 1) if out else torch.empty(batch, 0, dtype=torch.long)


def _compute(model: str, counter: list[int]) -> Any:
    def compute(rows: pd.DataFrame) -> Iterator[list[str]]:
        whisper = _Whisper(model)
        paths = rows["wav_path"].tolist()
        for start in range(0, len(paths), BATCH_SIZE):
            audio = [load_audio(p, SAMPLE_RATE) for p in paths[start : start + BATCH_SIZE]]
            counter[0] += sum(len(a) > WINDOW_S * SAMPLE_RATE for a in audio)
            for text in whisper([a[: int(WINDOW_S * SAMPLE_RATE)] for a in audio]):
                yield text.split()  # stored as words (the cache's list format); joined back with spaces

    return compute


def transcribe(rows: pd.DataFrame, model: str, cache: FeatureCache) -> Transcripts:
    """Each row's hypothesis, from the cache or transcribed now (rows sorted by id: one key per corpus)."""
    rows = rows.drop_duplicates("utterance_id").sort_values("utterance_id").reset_index(drop=True)
    counter = [0]
    features = cache.get(asr_spec(model), rows, _compute(model, counter), audio_fingerprint(rows))
    if counter[0]:
        log.warning("ASR: %d utterances are longer than %.0f s; their first %.0f s were transcribed", *counter)
    assert features.tokens is not None
    return Transcripts(model, {u: " ".join(w) for u, w in zip(features.ids, features.tokens)}, counter[0])


def apply_text_source(manifest: pd.DataFrame, transcripts: Transcripts) -> pd.DataFrame:
    """``manifest`` with ``text`` replaced by the ASR hypothesis and the gold text kept in ``gold_text``."""
    missing = sorted(set(manifest["utterance_id"]) - set(transcripts.text))
    if missing:
        raise AsrError(f"no ASR transcript for {len(missing)} utterances (first {missing[0]})")
    out = manifest.copy()
    out.insert(out.columns.get_loc("text") + 1, GOLD_COLUMN, out["text"])
    hypotheses = out["utterance_id"].map(transcripts.text)
    empty = int((hypotheses == "").sum())
    if empty:
        log.info("ASR heard nothing in %d of %d utterances: their text is %s", empty, len(out), NO_SPEECH)
    out["text"] = hypotheses.where(hypotheses != "", NO_SPEECH)
    return out


def asr_model_for(text_source: str, fixed: dict[str, Any], smoke_test: bool) -> str:
    """The ASR checkpoint a run uses ("" for gold text): ``--set text.asr_model``, else the tiny random-init
    Whisper in a smoke test, else ``DEFAULT_ASR_MODEL``."""
    if text_source not in TEXT_SOURCES:
        raise AsrError(f"--text-source {text_source!r}: choose one of {', '.join(TEXT_SOURCES)}")
    chosen = str(fixed.get("text.asr_model") or "")
    if text_source == "gold":
        if chosen:
            raise AsrError(f"--set text.asr_model={chosen}: applies with --text-source asr only")
        return ""
    return chosen or (str(ensure_tiny_whisper()) if smoke_test else DEFAULT_ASR_MODEL)


def asr_manifest(corpus_rows: pd.DataFrame, manifest: pd.DataFrame, model: str) -> pd.DataFrame:
    """``manifest`` with ASR text (``apply_text_source``), every row of ``corpus_rows`` (the whole corpus, so
    another class set or subset reuses the transcripts) transcribed once into the feature cache."""
    transcripts = transcribe(corpus_rows, model, FeatureCache(default_cache_dir() / "features"))
    return apply_text_source(manifest, transcripts)


# --- word error rate against the gold transcripts ----------------------------------------------------
# WER = (substitutions + deletions + insertions) / reference words, pooled over utterances (not a mean of
# per-utterance rates, which would weigh a two-word turn like a forty-word one), computed by ``jiwer`` on
# normalised text: lower case, IEMOCAP's bracketed non-speech tokens (``[LAUGHTER]``, ``[GARBAGE]``) and
# punctuation removed (an apostrophe inside a word kept). An utterance whose gold transcript is empty after
# normalisation (only a laugh) has no words to miss: it is left out of WER and counted.

_BRACKETED = re.compile(r"\[[^\]]*\]")
_PUNCTUATION = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


def normalise(text: str) -> str:
    """Lower case, bracketed tokens and punctuation out, single spaces."""
    text = _BRACKETED.sub(" ", text.lower())
    return " ".join(_PUNCTUATION.sub(" ", text).split())


@dataclass(frozen=True)
class WordErrors:
    errors: int  # substitutions + deletions + insertions
    words: int  # reference words
    substitutions: int
    deletions: int
    insertions: int
    utterances: int  # scored
    empty_references: int  # left out: no reference word after normalisation

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float("nan")


def word_errors(references: Iterable[str], hypotheses: Iterable[str]) -> WordErrors:
    """Pooled word errors of hypotheses against references (both normalised here)."""
    pairs = [(normalise(r), normalise("" if h == NO_SPEECH else h)) for r, h in zip(references, hypotheses)]
    kept = [(r, h) for r, h in pairs if r]
    if not kept:
        return WordErrors(0, 0, 0, 0, 0, 0, len(pairs))
    out = jiwer.process_words([r for r, _ in kept], [h for _, h in kept])
    errors = out.substitutions + out.deletions + out.insertions
    words = out.substitutions + out.deletions + out.hits
    return WordErrors(
        errors, words, out.substitutions, out.deletions, out.insertions, len(kept), len(pairs) - len(kept)
    )


def wer_counts(manifest: pd.DataFrame, gold_column: str = "gold_text") -> dict[str, float]:
    """``errors_S`` and ``words_S`` per session S of ``manifest`` (ASR ``text`` vs ``gold_column``): what a
    run's ``RunMeta.wer`` keeps."""
    counts: dict[str, float] = {}
    for session, rows in manifest.groupby("session"):
        found = word_errors(rows[gold_column], rows["text"])
        counts[f"errors_{session}"] = float(found.errors)
        counts[f"words_{session}"] = float(found.words)
    return counts


def wer_of(counts: dict[str, float], sessions: Iterable[int]) -> float:
    """The pooled WER over ``sessions`` from ``wer_counts``' figures (NaN where none is counted)."""
    errors = sum(counts.get(f"errors_{s}", 0.0) for s in sessions)
    words = sum(counts.get(f"words_{s}", 0.0) for s in sessions)
    return errors / words if words else float("nan")


# --- the tiny random-init checkpoint ------------------------------------------------------------------


def write_tiny_whisper(out: Path) -> Path:
    """A random-init whisper-small with tiny sizes, its tokenizer, feature extractor and generation config."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    from harness.corpus.demo import FILLERS, WORD_GROUPS

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    texts = [" ".join(group) for group in WORD_GROUPS] + [" ".join(FILLERS)]
    # The demo's characters only (no byte alphabet): a random-init model then writes demo word pieces.
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=list(WHISPER_SPECIALS))
    tokenizer.train_from_iterator(texts, trainer)
    eot = "<|endoftext|>"
    fast = WhisperTokenizer(tokenizer_object=tokenizer, unk_token=eot, bos_token=eot, eos_token=eot, pad_token=eot)
    ids: dict[str, int] = {token: tokenizer.token_to_id(token) for token in WHISPER_SPECIALS}  # type: ignore[misc]
    config = WhisperConfig(
        **(WHISPER_SMALL | TINY_SIZES | {"vocab_size": len(fast)}),
        pad_token_id=ids[eot],
        bos_token_id=ids[eot],
        eos_token_id=ids[eot],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    model = WhisperForConditionalGeneration(config)
    # As in openai/whisper-small's generation_config.json: special tokens other than end-of-text are never
    # generated, and the first token is never end-of-text (so a hypothesis is never empty by construction).
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=ids[eot],
        pad_token_id=ids[eot],
        no_timestamps_token_id=ids["<|notimestamps|>"],
        lang_to_id={"<|en|>": ids["<|en|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        is_multilingual=True,
        suppress_tokens=[i for t, i in ids.items() if t != eot],
        begin_suppress_tokens=[ids[eot]],
        max_length=config.max_target_positions,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=config.num_mel_bins), tokenizer=fast
    ).save_pretrained(out)
    (out / "HARNESS_TINY").write_text(json.dumps({"recipe": "whisper-small, sizes shrunk", "sizes": TINY_SIZES}))
    return out


def ensure_tiny_whisper(cache_dir: str | Path | None = None) -> Path:
    """The tiny random-init Whisper, built once under the cache; returns its folder."""
    base = Path(cache_dir or default_cache_dir()) / "tiny_models"
    base.mkdir(parents=True, exist_ok=True)
    out = base / "whisper_asr"
    with FileLock(str(base / ".whisper_asr.lock")):
        if not (out / "config.json").exists():
            log.info("building a tiny random-init Whisper ASR checkpoint in %s", out)
            tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
            write_tiny_whisper(tmp).rename(out)
    return out
