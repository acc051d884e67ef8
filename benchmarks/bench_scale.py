"""What the harness costs on an IEMOCAP-sized corpus (issue 11 item 5), as one table.

    python benchmarks/bench_scale.py [--scale 0.02] [--data DIR] [--pairs ...] [--real-size] [--threads 1]
                                     [--devices cpu cuda] [--set KEY=VALUE ...] [--out FILE.md]

It generates a corpus in the ``IEMOCAP_full_release`` layout and formats (the demo corpus's synthetic
voices and words, with IEMOCAP's size: at ``--scale 1.0`` 151 dialogs and 10,039 utterances with the
release's label counts, durations log-normal with median 3.6 s clipped to 0.6-34 s), or takes one with
``--data``, and measures:

* inspect: reading the corpus into a manifest (``harness.data inspect``);
* per feature kind the pairs need: extraction time and throughput (audio seconds per second) and cache size;
* per pair and device, in a fresh process per pair as a Ray trial would be (``--threads`` torch threads,
  1 = ``--cpus-per-trial 1``): start-up (interpreter + imports), peak RSS, the time of an epoch on a full
  training fold (training steps + validation) in the steady state (the mean of epochs 2-3; epoch 1, with
  cuDNN's autotuning and first-touch costs, is reported apart: ``TIMED_EPOCHS``), and the fixed cost per
  fold (loading cached features, building the model, scoring, measuring);
* extrapolated to IEMOCAP size (x 1/scale where a cost grows with the corpus): a fold, the default search
  of the flat protocol (8 trials, 5 folds, ASHA: rungs at 1, 2, 4 folds keep the top half) and a 40-trial
  search, in trial-slot hours (one trial slot = ``--threads`` cores, or a quarter GPU) and in wall hours on
  this machine;
* a second table: the full nested benchmark at the default budget (``benchmarks/nested_cost.py``: 8
  configs per outer fold, 5 outer x 4 inner folds, the final stage with 5 seeds) per pair and in total,
  under both fidelity schedules (``--fidelity epochs`` and ``folds``): trial-epochs, slot-hours, wall hours
  on this machine and, on a GPU, GPU-hours at ``--gpu-fraction`` of a GPU per trial.

Epochs per fold are taken at the config's cap (30, ``harness/search_spaces/_base.yaml``), or ``--fold-epochs``
(the mean observed under early stopping, when known): early stopping (patience 6) usually ends sooner, so
figures at the cap are upper bounds. Pretrained encoders use tiny random-init
checkpoints, or real-size ones with ``--real-size`` (built offline once under $HARNESS_CACHE).
``--scale 0.02`` (about 200 utterances) runs in 2-3 minutes on 2 cores; CI runs it smaller
(tests/integration/test_bench_scale.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from harness.models.pairs import PAIRS

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/nested_cost.py, run as a script
from nested_cost import FIDELITIES, INNER_FOLDS, OUTER_FOLDS, SEEDS, TRIALS, PairCost, pair_cost  # noqa: E402

COLUMNS = ["metric", "item", "device", "value", "unit", "at_iemocap_size"]
# IEMOCAP_full_release: label counts of the 10,039 rated utterances in 151 dialogs.
IEMOCAP_LABELS = {
    "neu": 1708,
    "fru": 1849,
    "ang": 1103,
    "sad": 1084,
    "exc": 1041,
    "hap": 595,
    "xxx": 2507,
    "sur": 107,
    "fea": 40,
    "oth": 3,
    "dis": 2,
}
IEMOCAP_DIALOGS = 151
MEDIAN_SECONDS, SIGMA, MIN_SECONDS, MAX_SECONDS = 3.6, 0.67, 0.6, 34.0  # sigma: mean ~4.5 s, as IEMOCAP
ALL_PAIRS = list(PAIRS)  # the default budget of the nested benchmark: every registered pair
NESTED_COLUMNS = [
    "pair",
    "device",
    "fidelity",
    "search_trial_epochs",
    "final_trial_epochs",
    "trial_epochs",
    "slot_hours",
    "slots",
    "wall_hours",
    "gpu_hours",
]
DEFAULT_TRIALS, FOLDS, MAX_EPOCHS = 8, 5, 30


# -- the corpus ---------------------------------------------------------------------------------------------
def write_scaled_corpus(root: Path, scale: float, seed: int = 0, workers: int = 1) -> Path:
    """An IEMOCAP-sized corpus in the release's layout, built from the demo corpus's synthetic cues.

    Each dialog is synthesised from its own random stream (``seed``, dialog index), so ``workers``
    processes write the same corpus as one."""
    from concurrent.futures import ProcessPoolExecutor

    out = root / "IEMOCAP_full_release"
    rng = np.random.default_rng(seed)
    labels = [label for label, n in IEMOCAP_LABELS.items() for _ in range(max(round(n * scale), 0))]
    rng.shuffle(labels)
    n_dialogs = max(5, round(IEMOCAP_DIALOGS * scale))
    jobs = [(out, d, n_dialogs, labels[d::n_dialogs], seed) for d in range(n_dialogs)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_dialog, jobs, chunksize=4))
    else:
        for job in jobs:
            _write_dialog(job)
    return out


def _write_dialog(job: tuple[Path, int, int, list[str], int]) -> None:
    """One dialog's wavs, EmoEvaluation summary and transcription."""
    import soundfile

    # the demo corpus's private helpers, reused on purpose: the same voices, words and file formats
    from harness.corpus import demo

    out, d, n_dialogs, dialog_labels, seed = job
    rng = np.random.default_rng([seed, d])
    session, index = d % 5 + 1, d // 5
    pitch = {"F": 215.0, "M": 120.0}
    name = f"Ses0{session}{'FM'[index % 2]}_{'impro' if index % 3 else 'script'}{index + 1:02d}"
    summary = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    transcript: list[str] = []
    turns: Counter[str] = Counter()
    clock = 2.0
    for i, label in enumerate(dialog_labels):
        gender = "FM"[i % 2]
        utt = f"{name}_{gender}{turns[gender]:03d}"
        turns[gender] += 1
        seconds = float(np.clip(rng.lognormal(math.log(MEDIAN_SECONDS), SIGMA), MIN_SECONDS, MAX_SECONDS))
        start, end = clock, clock + seconds
        clock = end + 0.5
        audio_cue, text_cue = demo.CUES.get(label, (int(rng.integers(0, 3)), int(rng.integers(0, 3))))
        wav = out / f"Session{session}" / "sentences" / "wav" / name / f"{utt}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        audio = demo._synth_audio(rng, demo._cue(rng, audio_cue, False, 0.2), pitch[gender], seconds)
        soundfile.write(str(wav), audio, demo.SAMPLE_RATE, subtype="PCM_16")
        # longer utterances say more words: a sentence per ~3 s
        sentences = max(1, round(seconds / 3))
        text = " ".join(demo._synth_text(rng, demo._cue(rng, text_cue, False, 0.2)) for _ in range(sentences))
        summary += [
            f"[{start:.4f} - {end:.4f}]\t{utt}\t{label}\t[{demo._vad(rng)}]",
            f"C-E1:\t{demo.CATEGORY_NAMES[label]};\t()",
            "",
        ]
        transcript.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {text}")
    dialog_dir = out / f"Session{session}" / "dialog"
    demo._write_text(dialog_dir / "EmoEvaluation" / f"{name}.txt", summary, crlf=False)
    demo._write_text(dialog_dir / "transcriptions" / f"{name}.txt", transcript, crlf=False)


# -- one pair's fold, in a fresh process ------------------------------------------------------------------
# Epochs timed per fold: epoch 1 (cuDNN's autotuning of each bucket shape, first-touch allocations) is
# reported apart from the steady state, the mean of epochs 2..N, which is what the extrapolations use.
TIMED_EPOCHS = 3


def timed_fit(cfg: Any, pair: Any, data: Any, fold: Any, device: Any) -> tuple[Any, dict[str, float]]:
    """``fit_fold`` for ``cfg.epochs`` epochs (no early stop before them), each epoch's end timed by its
    report (training steps + validation): ``epoch_s`` is the steady state (epochs 2..N), ``first_epoch_s``
    epoch 1 (the whole epoch loop's wall minus the steady epochs)."""
    from harness.train.fit import fit_fold

    marks: list[float] = []
    record = fit_fold(cfg, pair, data, fold, lambda _: marks.append(time.perf_counter()), device=device).record
    loop = record.resources.train_wall_s
    steady = (marks[-1] - marks[0]) / (len(marks) - 1) if len(marks) > 1 else loop
    return record, {
        "epoch_s": steady,
        "first_epoch_s": max(0.0, loop - steady * (len(marks) - 1)),
        "epochs_timed": len(marks),
        "loop_s": loop,
    }


def probe(spec: dict) -> dict:
    """Runs in a child process: load cached features, one epoch on the fold's full training speakers, score,
    measure. Returns the timings (start-up counted from the process's creation)."""
    import psutil

    created = psutil.Process().create_time()
    import torch

    from harness.config import TrialConfig
    from harness.corpus import load_corpus, make_fold
    from harness.features import FeatureCache, corpus_fingerprint
    from harness.models.data import load_pair_data
    from harness.models.pairs import get_pair
    from harness.train.measure import ResourceMonitor

    torch.set_num_threads(spec["threads"])
    startup = time.time() - created
    # Sampled RSS, not ru_maxrss: after fork + exec that still counts the parent's pages.
    with ResourceMonitor(torch.device("cpu")) as whole:
        manifest = load_corpus(spec["root"]).manifest()
        pair = get_pair(spec["pair"])
        epochs = int(spec.get("epochs", TIMED_EPOCHS))
        cfg = TrialConfig.from_flat(spec["config"] | {"epochs": epochs, "patience": epochs, "explain_samples": 0})
        t = time.perf_counter()
        data = load_pair_data(
            pair, cfg, manifest, FeatureCache(spec["cache"]), corpus_fingerprint(manifest), progress=False
        )
        load = time.perf_counter() - t
        fold = make_fold(manifest, 5)
        device = torch.device(spec["device"])
        if spec.get("barrier"):  # concurrent probes: every one loaded before any trains (``concurrent_probes``)
            wait_for_all(Path(spec["barrier"]), int(spec["barrier_n"]))
        record, epochs_s = timed_fit(cfg, pair, data, fold, device)
    return {
        "startup_s": startup,
        "load_s": load,
        "build_s": record.seconds["train"] - epochs_s["loop_s"],
        "epoch_s": epochs_s["epoch_s"],  # steady state: the mean of epochs 2..N (training steps + validation)
        "first_epoch_s": epochs_s["first_epoch_s"],
        "epochs_timed": epochs_s["epochs_timed"],
        "score_s": record.seconds["score"],
        "measure_s": record.seconds["measure"],
        "peak_rss_gb": max(whole.peak_rss_bytes, record.resources.peak_rss_gb * 1024**3) / 1024**3,
        "peak_gpu_gb": record.resources.peak_gpu_gb,
        "n_train": len(fold.train),
        "utt_per_s": record.resources.train_utterances_per_s,
    }


def run_probe(spec: dict) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--probe", json.dumps(spec)],
        check=False,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{spec['pair']} on {spec['device']} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_for_all(folder: Path, n: int, timeout_s: float = 600.0) -> None:
    """A file-system barrier: announce this process in ``folder`` and wait until ``n`` have."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"ready-{os.getpid()}").touch()
    end = time.monotonic() + timeout_s
    while len(list(folder.glob("ready-*"))) < n:
        if time.monotonic() > end:
            raise RuntimeError(f"barrier {folder}: {len(list(folder.glob('ready-*')))} of {n} probes ready")
        time.sleep(0.05)


def concurrent_probes(spec: dict, n: int, barrier: Path) -> dict:
    """``n`` probes of ``spec`` side by side on one device, as ``n`` trials sharing it: each in its own
    process, all loaded before any trains (a barrier), each timing its own steady-state epochs. The combined
    throughput is the sum of each one's training utterances per steady-state second."""
    if barrier.exists():
        shutil.rmtree(barrier)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, __file__, "--probe", json.dumps(spec | {"barrier": str(barrier), "barrier_n": n})]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(n)
    ]
    outs = [p.communicate() for p in procs]
    failed = [err for p, (_, err) in zip(procs, outs) if p.returncode != 0]
    if failed:
        raise RuntimeError(f"{n} concurrent probes of {spec['pair']}: {len(failed)} failed:\n{failed[0][-3000:]}")
    runs = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    per_trial = [r["n_train"] / r["epoch_s"] for r in runs]
    return {
        "trials": n,
        "epoch_s": [r["epoch_s"] for r in runs],
        "utt_per_s_per_trial": per_trial,
        "combined_utt_per_s": float(sum(per_trial)),
        "peak_gpu_gb": max((r["peak_gpu_gb"] or 0.0) for r in runs),
    }


# -- extrapolation ----------------------------------------------------------------------------------------
def asha_folds_per_trial(folds: int = FOLDS, reduction: int = 2) -> float:
    """Expected folds a trial runs under ASHA (grace 1, the search's settings): a trial passes each rung
    (1, 2, 4 ... folds) with probability 1/reduction. Asynchronous promotion lets early trials pass more
    often, so real searches run somewhat more."""
    expected, reach, rung = 0.0, 1.0, 1
    done = 0
    while done < folds:
        nxt = min(rung, folds)
        expected += reach * (nxt - done)
        done = nxt
        reach /= reduction
        rung *= reduction
    return expected


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.02, help="fraction of IEMOCAP's size (1.0 = 10,039 utts)")
    parser.add_argument("--data", help="an IEMOCAP_full_release folder to measure instead of generating one")
    parser.add_argument("--pairs", nargs="+", default=ALL_PAIRS, help="default: every registered pair")
    parser.add_argument("--real-size", action="store_true", help="real-size random-init pretrained checkpoints")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trial (Ray: --cpus-per-trial)")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda where present")
    parser.add_argument(
        "--fold-epochs", type=float, default=MAX_EPOCHS, help="epochs of a fold ASHA does not stop (default: the cap)"
    )
    parser.add_argument("--gpu-fraction", type=float, default=0.25, help="GPU per trial (Ray: --gpus-per-trial)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="write the table to FILE (Markdown) and FILE with .json")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))))
        return
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:  # corpus, features: gone at exit
        rows, nested = measure_all(args, Path(tmp))
    write_table(rows, nested, args)


def measure_all(args: argparse.Namespace, tmp: Path) -> tuple[list[dict], list[dict]]:
    import psutil
    import torch
    from transformers.utils import logging as hf_logging

    from harness.config import TrialConfig
    from harness.corpus import load_corpus
    from harness.features import FeatureCache, corpus_fingerprint
    from harness.models.pairs import get_pair
    from harness.models.tiny import ensure_checkpoint

    hf_logging.disable_progress_bar()
    rows: list[dict] = []

    def add(metric: str, item: str, device: str, value: float | None, unit: str, full: float | None) -> None:
        rows.append(dict(zip(COLUMNS, (metric, item, device, value, unit, full))))
        shown = "n/a" if value is None else f"{value:.4g}"
        print(
            f"  {metric:<22} {item:<18} {device:<5} {shown:>10} {unit:<14} {'' if full is None else f'{full:.4g}'}",
            flush=True,
        )

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    scale = args.scale
    started = time.perf_counter()
    if args.data:
        root = Path(args.data)
    else:
        root = write_scaled_corpus(tmp / "corpus", scale, workers=min(8, os.cpu_count() or 1))
        add("generate", "corpus", "cpu", time.perf_counter() - started, "s", None)
    started = time.perf_counter()
    corpus = load_corpus(root)
    manifest = corpus.manifest()
    inspect_s = time.perf_counter() - started
    audio_h = float(manifest["duration"].sum()) / 3600
    if args.data:  # a given corpus: its size relative to IEMOCAP's
        scale = len(manifest) / 7380
    factor = 1 / scale
    add("inspect", f"{len(manifest)} utts", "cpu", inspect_s, "s", inspect_s * factor)
    add("audio", "six classes", "-", audio_h, "hours", audio_h * factor)
    durations = manifest["duration"].to_numpy()
    add("duration median", "utterance", "-", float(np.median(durations)), "s", None)

    overrides = {
        k: json.loads(v) if v[:1] in "0123456789-[{tf" else v
        for k, v in (item.split("=", 1) for item in args.overrides)
    }
    size = "real" if args.real_size else "tiny"
    cache = FeatureCache(tmp / "features")
    fingerprint = corpus_fingerprint(manifest)
    configs = {}
    for name in args.pairs:
        pair = get_pair(name)
        models = {f"{m}.model": str(ensure_checkpoint(v, size)) for m, v in pair.variants.items() if v.pretrained}
        configs[name] = TrialConfig.from_flat(models | overrides)
    done: set[str] = set()
    for name in args.pairs:
        for variant in get_pair(name).variants.values():
            for spec in variant.feature_specs(configs[name]).values():
                key = json.dumps(spec.describe(), sort_keys=True)
                if key in done:
                    continue
                done.add(key)
                item = spec.kind if spec.kind != "layer_means" else f"layers:{spec['encoder']}"
                device = "cuda" if spec.kind == "layer_means" and torch.cuda.is_available() else "cpu"
                compute = variant.compute(spec)
                t = time.perf_counter()
                list(compute(manifest.iloc[:1]))  # one-off costs: librosa's JIT, loading a model
                add("extract warm-up", item, device, time.perf_counter() - t, "s", None)
                t = time.perf_counter()
                cache.get(spec, manifest, compute, fingerprint, progress=False)
                seconds = time.perf_counter() - t
                add("extract", item, device, seconds, "s", seconds * factor)
                add("extract throughput", item, device, audio_h * 3600 / seconds, "audio s/s", None)
                add(
                    "cache size",
                    item,
                    "-",
                    directory_mb(cache.folder(spec, fingerprint)),
                    "MB",
                    directory_mb(cache.folder(spec, fingerprint)) * factor,
                )

    cores = psutil.cpu_count() or 1
    folds = asha_folds_per_trial()
    nested: list[dict] = []
    for device in devices:
        for name in args.pairs:
            probe_spec = {
                "pair": name,
                "device": device,
                "root": str(root),
                "cache": str(cache.root),
                "config": configs[name].flat(),
                "threads": args.threads,
            }
            r = run_probe(probe_spec)
            epoch_full = r["epoch_s"] * factor
            fixed = r["load_s"] + r["build_s"] + r["score_s"] + r["measure_s"]
            fixed_full = r["load_s"] + r["build_s"] + r["score_s"] * factor + r["measure_s"]
            fold_full = fixed_full + MAX_EPOCHS * epoch_full
            add("trial start-up", name, device, r["startup_s"], "s", r["startup_s"])
            add("trial peak RSS", name, device, r["peak_rss_gb"], "GB", None)
            if r["peak_gpu_gb"] is not None:
                add("trial peak GPU", name, device, r["peak_gpu_gb"], "GB", None)
            add("first epoch (full fold)", name, device, r["first_epoch_s"], f"s, {r['n_train']} utts", None)
            add(
                "epoch, steady state (full fold)",
                name,
                device,
                r["epoch_s"],
                f"s, mean of epochs 2-{r['epochs_timed']}, {r['n_train']} utts",
                epoch_full,
            )
            add("fixed per fold", name, device, fixed, "s", fixed_full)
            add("fold, 30 epochs", name, device, None, "s", fold_full)
            slots = cores // args.threads if device == "cpu" else min(cores // args.threads, 4)
            for trials, label in ((DEFAULT_TRIALS, "default search"), (40, "40-trial search")):
                slot_h = trials * (r["startup_s"] + folds * fold_full) / 3600
                add(label, name, device, None, "trial-slot h", slot_h)
                add(label + " wall", name, device, None, f"h, {slots} slots", slot_h / max(1, min(slots, trials)))
            if device != "cpu":  # GPU slots: as many fractional trials as fit on the GPU (and the cores)
                slots = min(cores // args.threads, max(1, round(1 / args.gpu_fraction)))
            for fidelity in FIDELITIES:
                cost = pair_cost(name, device, fidelity, epoch_full, fixed_full, r["startup_s"], args.fold_epochs)
                nested.append(nested_row(cost, slots, args.gpu_fraction))
    for device in devices:
        for fidelity in FIDELITIES:
            part = [n for n in nested if n["device"] == device and n["fidelity"] == fidelity]
            total = {c: sum(n[c] for n in part) for c in NESTED_COLUMNS[3:] if c not in ("slots", "gpu_hours")}
            gpu = None if part[0]["gpu_hours"] is None else sum(n["gpu_hours"] for n in part)
            every = "" if set(args.pairs) >= set(PAIRS) else f" ({len(part)} of {len(PAIRS)} registered pairs)"
            nested.append(
                {"pair": "TOTAL" + every, "device": device, "fidelity": fidelity}
                | total
                | {"slots": part[0]["slots"], "gpu_hours": gpu}
            )
    return rows, nested


def nested_row(cost: PairCost, slots: int, gpu_fraction: float) -> dict:
    """One pair's nested benchmark: wall hours with ``slots`` trials at once (no slowdown between them
    assumed), GPU-hours at ``gpu_fraction`` of a GPU per trial."""
    return {
        "pair": cost.pair,
        "device": cost.device,
        "fidelity": cost.fidelity,
        "search_trial_epochs": cost.search_trial_epochs,
        "final_trial_epochs": cost.final_trial_epochs,
        "trial_epochs": cost.trial_epochs,
        "slot_hours": cost.slot_hours,
        "slots": slots,
        "wall_hours": cost.slot_hours / slots,
        "gpu_hours": None if cost.device == "cpu" else cost.slot_hours * gpu_fraction,
    }


def write_table(rows: list[dict], nested: list[dict], args: argparse.Namespace) -> None:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    header = (
        f"bench_scale: scale {args.scale}, {'real-size' if args.real_size else 'tiny'} checkpoints, "
        f"{args.threads} thread(s) per trial; {platform.processor() or platform.machine()} x "
        f"{os.cpu_count()} cores, {gpu}; ASHA {asha_folds_per_trial():.3g} folds/trial of {FOLDS}, "
        f"{MAX_EPOCHS} epochs per fold (cap)"
    )

    def cell(value: object) -> str:
        return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    def table(columns: list[str], items: list[dict]) -> list[str]:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        return lines + ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in items]

    nested_header = (
        f"Full nested benchmark at the default budget, at IEMOCAP size: {TRIALS} configs per outer fold, "
        f"{OUTER_FOLDS} outer x {INNER_FOLDS} inner folds, final stage {SEEDS} seeds x {OUTER_FOLDS} folds; "
        f"unstopped folds run {args.fold_epochs:g} epochs"
        f"{' (the cap: upper bounds)' if args.fold_epochs >= MAX_EPOCHS else ''}; ASHA modelled analytically (a "
        f"fraction 1/eta goes on at each rung); slots run at once without slowing each other; GPU-hours at "
        f"{args.gpu_fraction:g} GPU per trial"
    )
    lines = [header, "", *table(COLUMNS, rows), "", nested_header, "", *table(NESTED_COLUMNS, nested)]
    print("\n" + "\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.write_text("\n".join(lines) + "\n")
        out.with_suffix(".json").write_text(
            json.dumps(
                {
                    "header": header,
                    "columns": COLUMNS,
                    "rows": rows,
                    "nested": {"header": nested_header, "columns": NESTED_COLUMNS, "rows": nested},
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
