"""The prepared GPU check of issue 21 (run by benchmarks/bench_gpu.sh; read that file first).

    python benchmarks/gpu_check.py fetch-wheels .whl     # here, with pip's network: the wheels to carry
    python benchmarks/gpu_check.py run [--dry-run] [--out DIR] [--budget-s 450]

``run`` measures, on a generated corpus of IEMOCAP's size (``bench_scale.write_scaled_corpus``, 10,039
utterances) and in this order, each step only while the time budget lasts:

1. the small pair's (``cnnbilstm_bilstm``) epochs on a full training fold, in a fresh process on the GPU
   (``bench_scale.run_probe``: the training loop as a trial runs it): epoch 1 (cuDNN autotunes each bucket
   shape there) apart from the steady state, the mean of epochs 2-3 (2 in a dry run), which is what the
   costs below use;
1a. combined throughput of 1, 2, 4 and 8 small-pair trials sharing the GPU (``bench_scale.concurrent_probes``:
   each its own process as Ray runs fractional trials, all loaded before any trains, each timing its own
   steady-state epochs; the combined utterances per second over one trial's is what n trials per GPU buy,
   and step 4 divides by it instead of assuming n trials cost one slot's time);
1b. fused seeds (``bench_fused.py``, demo corpus, small pair): host operations and wall time per
   member-step with K = 1, 2 and 5 members;
2. the GPU's busy share (NVML utilisation, sampled every 0.5 s) during a 4-trial fractional search (0.25 GPU
   per trial), over a fixed window once its trials keep the GPU busy; then the same with 8 trials at
   0.125 GPU. The searches are stopped (SIGINT) after the window: the share of a running search is what is
   measured, not a finished one;
3. every other registered pair's steady-state epoch (``bench_scale.timed_fit``) at a smaller scale, in one
   process, with real-size random-init checkpoints (``harness.models.tiny``), scaled to IEMOCAP size by
   training utterances;
4. the full nested benchmark's cost from those epoch times (``nested_cost.py``), in GPU-hours at 0.125
   and 0.25 GPU per trial: the trials' slot-hours divided by the measured speed-up of 8 and 4 trials per
   GPU (step 1a; the small pair's, applied to every pair, which flatters the compute-bound large ones).

It prints the targets: the small pair's epoch at least 4x faster than 15.1 s (H100, before), and the full
nested benchmark at most 2 GPU-hours. ``--dry-run`` runs every step on the CPU at a tiny scale with one
trial per search and the CPU's busy share in place of the GPU's (CI: tests/integration/test_bench_gpu.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
BEFORE_EPOCH_S, EPOCH_SPEEDUP_TARGET, NESTED_GPU_HOURS_TARGET = 15.1, 4.0, 2.0
SMALL_PAIR = "cnnbilstm_bilstm"

# What the device image lacks (/work/.library/device/KINDS.md), at the versions installed here.
WHEELS = [
    "ray",
    "optuna",
    "alembic",
    "Mako",
    "SQLAlchemy",
    "colorlog",
    "librosa",
    "audioread",
    "decorator",
    "pooch",
    "platformdirs",
    "soundfile",
    "cffi",
    "pycparser",
    "soxr",
    "jsonschema",
    "jsonschema-specifications",
    "referencing",
    "rpds-py",
    "captum",
    "tensorboardX",
    "pydantic",  # ray.train (which ray.tune imports) needs it; the device image lacks it (found on an H200 run)
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
]
# Ray's Java worker (30 MB of its 79 MB wheel) and dashboard front end: never used by a Python search, and
# the carried tree is limited to 64 MiB.
RAY_STRIP = ("ray/jars/", "ray/dashboard/client/build/")
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


# -- wheels ------------------------------------------------------------------------------------------------
def fetch_wheels(folder: Path) -> None:
    """Download the wheels the device lacks for its Python 3.12 (x86-64), at the versions installed here."""
    from importlib.metadata import version

    folder.mkdir(parents=True, exist_ok=True)
    for name in WHEELS:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version"]
        command += ["3.12", "--implementation", "cp", "-d", str(folder), f"{name}=={version(name)}"]
        for plat in PLATFORMS:
            command += ["--platform", plat]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    for wheel in folder.glob("ray-*.whl"):
        strip_wheel(wheel, RAY_STRIP)
    total = sum(f.stat().st_size for f in folder.glob("*.whl")) / 2**20
    print(f"{len(list(folder.glob('*.whl')))} wheels, {total:.1f} MiB in {folder}")


def strip_wheel(wheel: Path, prefixes: tuple[str, ...]) -> None:
    """Rewrite ``wheel`` without the files under ``prefixes`` (and their RECORD lines)."""
    stripped = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(stripped, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename.startswith(prefixes):
                continue
            data = source.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = ("\n".join(line for line in lines if not line.startswith(prefixes)) + "\n").encode()
            target.writestr(item, data)
    stripped.replace(wheel)


# -- sampling the device's busy share ----------------------------------------------------------------------
class BusySampler:
    """Samples the GPU's utilisation (NVML, % of the last sample period with a kernel running) every
    ``period`` seconds in a thread; on CPU (``--dry-run``) the whole machine's CPU share instead."""

    def __init__(self, gpu: bool, period: float = 0.5):
        self.gpu, self.period = gpu, period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        if gpu:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._read = lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        else:
            import psutil

            psutil.cpu_percent()
            self._read = lambda: float(psutil.cpu_percent())
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append((time.monotonic(), self._read()))

    def __enter__(self) -> BusySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def busy_since(self, threshold: float = 5.0) -> float | None:
        """When the device first passed ``threshold`` % busy (the search's trials started training)."""
        return next((t for t, u in self.samples if u >= threshold), None)

    def mean(self, start: float, end: float) -> float:
        window = [u for t, u in self.samples if start <= t <= end]
        return sum(window) / len(window) if window else float("nan")


def search_busy_share(
    trials: int,
    fraction: float,
    cpus: int,
    root: Path,
    storage: Path,
    window: tuple[float, float],
    start_timeout_s: float,
    gpu: bool,
) -> dict:
    """Start a ``trials``-trial search at ``fraction`` GPU per trial, wait until the device is busy, let the
    other trials start (``window[0]`` seconds), sample ``window[1]`` seconds, stop the search. Returns the
    busy share over the window and over the whole run.

    On CPU (dry run) the machine is busy from the search's first import, so the one-epoch search runs to
    its end and the whole run is the window (a SIGINT during Ray's start-up is not what is checked)."""
    command = [sys.executable, "-m", "harness.search", "--pair", SMALL_PAIR, "--data", str(root)]
    command += ["--num-samples", str(trials), "--max-concurrent", str(trials), "--cpus-per-trial", str(cpus)]
    command += ["--storage", str(storage), "--name", f"busy{trials}", "--folds", "1"]
    if importlib.util.find_spec("harness.tune.fidelity") is not None:
        # rungs in folds: every trial trains at least a whole fold, so all of them are running in the window
        command += ["--fidelity", "folds"]
    command += ["--gpus-per-trial", str(fraction)] if gpu else ["--set", "epochs=1"]
    log = storage / f"search_{trials}.log"
    started = time.monotonic()
    with BusySampler(gpu) as sampler, open(log, "w") as out:
        search = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ.copy())
        busy = None
        if not gpu:
            search.wait(start_timeout_s + window[1])
            busy = started
        while time.monotonic() - started < start_timeout_s and search.poll() is None:
            busy = sampler.busy_since()
            if busy is not None:
                break
            time.sleep(0.5)
        if busy is not None:
            busy += window[0]
            while time.monotonic() < busy + window[1] and search.poll() is None:
                time.sleep(0.5)
        stopped = time.monotonic()
        if search.poll() is None:  # the harness's own SIGINT handling stops Ray Tune and the trials
            search.send_signal(signal.SIGINT)
            try:
                search.wait(60)
            except subprocess.TimeoutExpired:
                search.kill()
                search.wait()
    tail = log.read_text()[-2000:]
    if busy is None:
        raise RuntimeError(f"{trials}-trial search never kept the device busy (exit {search.returncode}):\n{tail}")
    return {
        "trials": trials,
        "gpu_per_trial": fraction if gpu else None,
        "window_s": round(max(stopped - busy, 0.0), 1),
        "busy_share": sampler.mean(busy, stopped) / 100,
        "busy_share_whole_run": sampler.mean(started, stopped) / 100,
        "start_to_busy_s": round(busy - started, 1),
        "exit": search.returncode,
    }


# -- epoch times --------------------------------------------------------------------------------------------
def other_pairs_epochs(
    pairs: list[str],
    root: Path,
    scale: float,
    device: str,
    cache: Path,
    deadline: float,
    size: str,
    epochs: int = 3,
) -> dict[str, dict]:
    """``pairs`` (but the small one): epochs on a full training fold in this process, with ``size`` (real:
    real-size random-init) checkpoints, timed as ``bench_scale`` times them (``timed_fit``: the steady state
    of epochs 2..N apart from epoch 1; x 1/scale to IEMOCAP size). Start-up is not measured here (the small
    pair's is used)."""
    import torch
    from bench_scale import timed_fit

    from harness.config import TrialConfig
    from harness.corpus import load_corpus, make_fold
    from harness.features import FeatureCache, corpus_fingerprint
    from harness.models.data import load_pair_data
    from harness.models.pairs import get_pair
    from harness.models.tiny import ensure_checkpoint

    manifest = load_corpus(root).manifest()
    fingerprint, features = corpus_fingerprint(manifest), FeatureCache(cache)
    fold, out = make_fold(manifest, 5), dict[str, dict]()
    for name in pairs:
        pair = get_pair(name)
        if name == SMALL_PAIR:
            continue
        if time.monotonic() > deadline:
            out[name] = {"skipped": "time budget spent"}
            continue
        models = {f"{m}.model": str(ensure_checkpoint(v, size)) for m, v in pair.variants.items() if v.pretrained}
        cfg = TrialConfig.from_flat(models | {"epochs": epochs, "patience": epochs, "explain_samples": 0})
        started = time.perf_counter()
        data = load_pair_data(pair, cfg, manifest, features, fingerprint, progress=False)
        extract = time.perf_counter() - started
        record, timed = timed_fit(cfg, pair, data, fold, torch.device(device))
        fixed = record.seconds["train"] - timed["loop_s"] + record.seconds["score"] + record.seconds["measure"]
        out[name] = {
            "epoch_s": timed["epoch_s"] / scale,  # steady state (epochs 2..N), at IEMOCAP size
            "first_epoch_s": timed["first_epoch_s"] / scale,
            "fixed_s": fixed,
            "extract_s": extract / scale,
        }
    return out


def fused_seeds(device: str, tmp: Path, dry_run: bool) -> dict:
    """``bench_fused.py`` for K = 1, 2, 5 members on the demo corpus (a dry run: tiny sizes, one step)."""
    out = tmp / "fused.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_fused.py"), "--device", device, "--json", str(out)]
    command += ["--members", "1", "2", "5"]
    if dry_run:
        command += ["--steps", "1", "--repeats", "1", "--set", "audio.channels=8", "audio.hidden=8"]
        command += ["text.embed_dim=8", "text.hidden=8", "fusion_dim=16"]
    else:
        command += ["--steps", "20", "--repeats", "3"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=os.environ | {"BENCH_THREADS": "4"})
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(out.read_text())


def concurrency_speedups(rows: list[dict]) -> dict[int, float]:
    """n -> the combined throughput of n trials sharing the device over one trial's (``concurrent_probes``)."""
    one = next((r["combined_utt_per_s"] for r in rows if r["trials"] == 1), None)
    return {r["trials"]: r["combined_utt_per_s"] / one for r in rows} if one else {}


# -- the run ------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace, tmp: Path) -> dict:
    """Every step in turn (see the module's docstring); ``tmp`` holds the corpora, caches and runs."""
    import torch
    from bench_scale import concurrent_probes, run_probe, write_scaled_corpus
    from nested_cost import pair_cost

    from harness.models.pairs import PAIRS

    began = time.monotonic()
    deadline = began + args.budget_s
    gpu = not args.dry_run
    if gpu and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA GPU; use --dry-run to check the steps on CPU")
    device = "cuda" if gpu else "cpu"
    scale = 0.004 if args.dry_run else 1.0
    cores = os.cpu_count() or 1
    result: dict = {
        "machine": f"{platform.machine()} x {cores} cores, "
        + (torch.cuda.get_device_name(0) if gpu else "CPU (dry run)"),
        "torch": torch.__version__,
        "scale": scale,
        "steps_s": {},
    }

    def step(name: str, t0: float) -> None:
        result["steps_s"][name] = round(time.monotonic() - t0, 1)
        print(f"[{time.monotonic() - began:6.1f} s] {name} done", flush=True)

    os.environ["HARNESS_CACHE"] = str(tmp / "cache")  # this run's features, checkpoints and demo corpus
    t0 = time.monotonic()
    root = write_scaled_corpus(tmp / "corpus", scale, workers=min(16, cores))
    step("generate corpus", t0)

    # 1. the small pair's epoch at IEMOCAP size (the probe extracts nothing: the cache is filled first)
    t0 = time.monotonic()
    from harness.config import TrialConfig
    from harness.corpus import load_corpus
    from harness.features import FeatureCache, corpus_fingerprint
    from harness.models.data import load_pair_data
    from harness.models.pairs import get_pair

    manifest = load_corpus(root).manifest()
    cache = Path(os.environ["HARNESS_CACHE"]) / "features"
    load_pair_data(get_pair(SMALL_PAIR), TrialConfig(), manifest, FeatureCache(cache), corpus_fingerprint(manifest))
    step("extract small pair's features", t0)
    t0 = time.monotonic()
    spec = {"pair": SMALL_PAIR, "device": device, "root": str(root), "cache": str(cache)}
    epochs = 2 if args.dry_run else 3  # epoch 1 apart from the steady state (epochs 2..N)
    probe = run_probe(spec | {"config": TrialConfig().flat(), "threads": 1 if args.dry_run else 4, "epochs": epochs})
    epoch_s = probe["epoch_s"] / scale
    result["small_pair"] = {
        "epoch_s": epoch_s,  # steady state: the mean of epochs 2..N, at IEMOCAP size
        "first_epoch_s": probe["first_epoch_s"] / scale,
        "epochs_timed": probe["epochs_timed"],
        "n_train": probe["n_train"],
        "utt_per_s": probe["utt_per_s"],
        "startup_s": probe["startup_s"],
        "fixed_s": probe["load_s"] + probe["build_s"] + probe["score_s"] / scale + probe["measure_s"],
        "peak_gpu_gb": probe["peak_gpu_gb"],
        "speedup_vs_before": BEFORE_EPOCH_S / epoch_s,
    }
    step("small pair epoch", t0)

    # 1a. combined throughput of 1, 2, 4 and 8 trials sharing the device (each its own process, as Ray runs
    # fractional trials), the small pair on the same full fold: what several trials per GPU really buy
    result["concurrency"] = []
    for n in (1, 2) if args.dry_run else (1, 2, 4, 8):
        if time.monotonic() > deadline - 60:
            break
        t0 = time.monotonic()
        threads = 1 if args.dry_run else max(1, min(4, cores // n))
        shared = concurrent_probes(
            spec | {"config": TrialConfig().flat(), "threads": threads, "epochs": epochs}, n, tmp / f"barrier{n}"
        )
        result["concurrency"].append(shared)
        step(f"{n} concurrent trials", t0)

    # 1b. fused seeds: host operations and wall per member-step, K = 1, 2, 5 (benchmarks/bench_fused.py)
    t0 = time.monotonic()
    result["fused"] = fused_seeds(device, tmp, args.dry_run)
    step("fused seeds K=1,2,5", t0)

    # 2. busy share during fractional searches
    result["searches"] = []
    for trials, fraction in ((4, 0.25), (8, 0.125)):
        if args.dry_run:
            trials = 1
        t0 = time.monotonic()
        cpus = max(1, min(cores // trials, 4)) if gpu else 1
        storage = tmp / "runs"
        storage.mkdir(exist_ok=True)
        result["searches"].append(
            search_busy_share(
                trials, fraction, cpus, root, storage, (args.settle_s, args.window_s), args.start_timeout_s, gpu
            )
        )
        step(f"{trials}-trial search at {fraction} GPU", t0)
        if args.dry_run:
            break

    # 3. every other pair at a smaller scale, 4. the nested benchmark's cost
    t0 = time.monotonic()
    small_root = root if args.dry_run else write_scaled_corpus(tmp / "small", args.others_scale, workers=min(16, cores))
    others = other_pairs_epochs(
        args.pairs,
        small_root,
        scale if args.dry_run else args.others_scale,
        device,
        tmp / "cache" / "features",
        deadline,
        "tiny" if args.dry_run else "real",
        epochs,
    )
    step("other pairs' epochs", t0)
    result["other_pairs"] = others
    small = result["small_pair"]
    measured = {SMALL_PAIR: small} | {k: v for k, v in others.items() if "epoch_s" in v}
    result["nested"] = {}
    speedups = concurrency_speedups(result["concurrency"])
    for fraction in (0.25, 0.125):
        for fidelity in ("epochs", "folds"):
            slots = [
                pair_cost(name, device, fidelity, m["epoch_s"], m["fixed_s"], small["startup_s"], args.fold_epochs)
                for name, m in measured.items()
            ]
            n = round(1 / fraction)
            # n trials on one device deliver ``speedups[n]`` times one trial's throughput (measured), not n times
            # (the ``slot-hours x fraction`` assumption); where n was not measured, that assumption, flagged
            speedup, basis = (speedups[n], "measured") if n in speedups else (float(n), "assumed: n x")
            result["nested"][f"{fidelity} @ {fraction} GPU"] = {
                "gpu_hours": sum(c.slot_hours for c in slots) / speedup,
                "gpu_hours_if_free": sum(c.slot_hours for c in slots) * fraction,
                "speedup": speedup,
                "speedup_basis": basis,
                "trials_per_device": n,
                "trial_epochs": sum(c.trial_epochs for c in slots),
                "pairs": len(slots),
            }
    result["complete"] = all("epoch_s" in v for v in others.values())  # every pair asked for was measured
    result["every_registered_pair"] = set(measured) == set(PAIRS)
    result["fold_epochs"] = args.fold_epochs
    result["registered_pairs"] = list(PAIRS)
    result["wall_s"] = round(time.monotonic() - began, 1)
    return result


def report(result: dict) -> str:
    small = result["small_pair"]
    lines = [
        f"bench_gpu: {result['machine']}, torch {result['torch']}, corpus scale {result['scale']}, "
        f"{result['wall_s']} s end to end",
        "",
        "| measure | value | target |",
        "|---|---:|---|",
        f"| {SMALL_PAIR} first epoch on a full training fold ({small['n_train']} utts) | "
        f"{small['first_epoch_s']:.2f} s | |",
        f"| {SMALL_PAIR} epoch, steady state (mean of epochs 2-{small['epochs_timed']}) | {small['epoch_s']:.2f} s "
        f"({small['speedup_vs_before']:.1f}x faster than {BEFORE_EPOCH_S} s) | >= {EPOCH_SPEEDUP_TARGET:g}x: "
        f"{'met' if small['speedup_vs_before'] >= EPOCH_SPEEDUP_TARGET else 'NOT met'} |",
    ]
    fused = result.get("fused", {})
    rows = {r["members"]: r for r in fused.get("rows", [])}
    if 1 in rows:
        for k, r in sorted(rows.items()):
            ops = rows[1]["ops_per_member_step"] / r["ops_per_member_step"]
            wall = rows[1]["s_per_member_step"] / r["s_per_member_step"]
            lines.append(
                f"| fused seeds K={k}: per member-step | {r['ops_per_member_step']:.0f} host ops "
                f"({ops:.2f}x fewer), {r['s_per_member_step'] * 1e3:.1f} ms ({wall:.2f}x faster) | K=5: >= 3x ops |"
            )
    elif fused:
        lines.append(f"| fused seeds | not measured: {fused.get('error')} | |")
    for c in result.get("concurrency", []):
        one = result["concurrency"][0]["combined_utt_per_s"]
        lines.append(
            f"| {c['trials']} concurrent {SMALL_PAIR} trials on one device: combined throughput | "
            f"{c['combined_utt_per_s']:.0f} utt/s ({c['combined_utt_per_s'] / one:.2f}x one trial's; "
            f"{min(c['utt_per_s_per_trial']):.0f}-{max(c['utt_per_s_per_trial']):.0f} per trial) | |"
        )
    for s in result["searches"]:
        share = f"{s['busy_share']:.0%} over {s['window_s']} s ({s['busy_share_whole_run']:.0%} from launch)"
        where = f"{s['gpu_per_trial']} GPU" if s["gpu_per_trial"] else "1 CPU core (dry run: CPU busy share)"
        lines.append(f"| busy share, {s['trials']} trials at {where} | {share} | |")
    for key, n in result["nested"].items():
        pairs = f"{n['pairs']} pairs" + ("" if result["complete"] else ", INCOMPLETE: pairs skipped")
        pairs += "" if result["every_registered_pair"] else f" of {len(result['registered_pairs'])} registered"
        verdict = "met" if n["gpu_hours"] <= NESTED_GPU_HOURS_TARGET else "NOT met"
        speedup = f"{n['speedup']:.2f}x from {n['trials_per_device']} trials, {n['speedup_basis']}"
        lines.append(
            f"| full nested benchmark, fidelity {key} ({pairs}, folds at {result['fold_epochs']:g} epochs; "
            f"{speedup}) | {n['gpu_hours']:.2f} GPU-h | <= {NESTED_GPU_HOURS_TARGET:g}: {verdict} |"
        )
    lines += ["", "steps (s): " + ", ".join(f"{k} {v}" for k, v in result["steps_s"].items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch-wheels")
    fetch.add_argument("folder", type=Path)
    go = sub.add_parser("run")
    go.add_argument("--dry-run", action="store_true", help="every step on CPU at a tiny scale, one trial")
    go.add_argument("--out", type=Path, help="folder for bench_gpu.md and bench_gpu.json")
    go.add_argument("--budget-s", type=float, default=420, help="steps after this are skipped (the check's limit)")
    go.add_argument("--window-s", type=float, default=45, help="busy-share sampling window per search")
    go.add_argument("--settle-s", type=float, default=10, help="from the first busy sample to the window")
    go.add_argument("--start-timeout-s", type=float, default=120, help="how long a search may take to start")
    go.add_argument("--others-scale", type=float, default=0.05, help="corpus scale for the other pairs")
    go.add_argument("--fold-epochs", type=float, default=30, help="epochs of an unstopped fold (default: cap)")
    go.add_argument("--pairs", nargs="+", help="pairs in the nested cost (default: every registered pair; dry run: 2)")
    args = parser.parse_args()
    if args.command == "fetch-wheels":
        fetch_wheels(args.folder)
        return
    if args.dry_run:  # every step, however slow the CPU: no budget; one frozen pretrained pair, one small
        args.window_s, args.others_scale, args.budget_s = min(args.window_s, 5), 0.004, float("inf")
        args.settle_s = 0.0
        args.pairs = args.pairs or [SMALL_PAIR, "wav2vec_albert", "bilstm"]
    if args.pairs is None:
        from harness.models.pairs import PAIRS

        args.pairs = list(PAIRS)
    work = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    try:
        result = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(result)
    print("\n" + text, flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_gpu.md").write_text(text + "\n")
        (args.out / "bench_gpu.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
