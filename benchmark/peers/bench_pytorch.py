#!/usr/bin/env python3
"""PyTorch eager baseline of the rosetta benchmark suite (docs/bench-schema.md).

Runs the 22 reference scenarios of `rosetta-bench` on moe_torch.py (our own eager PyTorch
implementation of the model contract), once with torch.set_num_threads(1) (plain ids) and
once with 2 threads (ids `<id>@torch_threads=2`), and writes benchmarks/pytorch.json.

Every scenario runs in a fresh child process (this script re-invoked with `--one ID`), so
`memory.peak_rss_bytes` (ru_maxrss) belongs to that scenario alone; the child prints one
JSON line that the driver collects.

    python3 bench_pytorch.py [--quick] [--json PATH] [--filter REGEX] [--torch-threads 1,2]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SEED = 42

# id -> (axis, kind, params); kind decides what one iteration does
SCENARIOS: dict[str, tuple[str, str, dict]] = {
    "mem_train_step": ("memory", "train", {"preset": "tiny", "batch": 2, "seq": 8}),
    **{f"mem_scale_batch_{b}": ("memory", "forward", {"preset": "tiny", "batch": b, "seq": 32})
       for b in (1, 2, 4, 8)},
    **{f"mem_scale_seq_{s}": ("memory", "forward", {"preset": "tiny", "batch": 2, "seq": s})
       for s in (8, 16, 32, 64)},
    "kernel_matmul": ("compiler", "matmul", {"n": 64}),
    "kernel_softmax": ("compiler", "softmax", {"n": 1000}),
    "kernel_rmsnorm": ("compiler", "rmsnorm", {"batch": 2, "seq": 32, "hidden": 64, "n": 64}),
    "dispatch_warm": ("dispatch", "forward", {"preset": "tiny", "batch": 2, "seq": 32}),
    "dispatch_cold": ("dispatch", "cold", {"preset": "tiny", "batch": 1, "seq": 8}),
    **{f"parallel_T{t}": ("parallel", "par_forward",
                          {"preset": "tiny", "batch": 2, "seq": 32, "threads": t})
       for t in (1, 2, 4)},
    **{f"parallel_train_T{t}": ("parallel", "par_train",
                                {"preset": "tiny", "batch": 2, "seq": 8, "threads": t})
       for t in (1, 2, 4)},
    "scale_forward_256": ("scale", "forward", {"preset": "small", "batch": 2, "seq": 32}),
    "scale_train_256": ("scale", "train", {"preset": "small", "batch": 2, "seq": 8}),
}

FLOP_COUNTING = (
    "2*m*n*k of every matrix product executed, computed analytically from the shapes and the "
    "actual routing of the counted iteration (moe_torch.forward_flops): q/k/v/o projections, "
    "full SxS attention score and value products per query head (mask applied after the "
    "product), router, the three SwiGLU products over the rows routed to each expert, LM "
    "head. Train steps count 3x the forward products (each product has two backward "
    "products of the same size). Elementwise work (softmax, RMSNorm, SwiGLU, AdamW) is not "
    "counted. kernel_matmul: 2*64^3; kernel_softmax, kernel_rmsnorm: 0.")

PARALLEL_NOTE = (
    "parallel_T{n} / parallel_train_T{n}: n forked worker processes, one independent model "
    "each, every worker with the pass's torch thread count (1 in the main pass); a round is "
    "one iteration per worker between two barriers, timed from the first worker's start to "
    "the last worker's end (CLOCK_MONOTONIC read in each worker). cpu_times_ns sums "
    "the workers' CPU time per round; gc sums the workers' collections.")

WAIT_NOTE = (
    "Passes with more than one torch thread set OMP_WAIT_POLICY=PASSIVE (unless "
    "--omp-wait-policy default/active): with libgomp's default spin-waiting, a competing "
    "process on one of the 2 cores made every parallel region wait for a descheduled "
    "thread (dispatch_warm 1.0 ms -> 24 ms, mem_train_step 5 ms -> 446 ms, measured here "
    "while a C++ build ran), which measures the scheduler, not the model. With 1 thread "
    "there is no OpenMP pool and the setting has no effect.")

# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------


def quantile(sorted_xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_xs:
        return 0.0
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def stats(timings: list[int]) -> dict:
    xs = sorted(timings)
    return {
        "median_ns": int(round(quantile(xs, 0.5))),
        "mean_ns": int(round(sum(xs) / len(xs))),
        "p95_ns": int(round(quantile(xs, 0.95))),
        "min_ns": int(xs[0]),
        "max_ns": int(xs[-1]),
        "iqr_ns": int(round(quantile(xs, 0.75) - quantile(xs, 0.25))),
    }


# --------------------------------------------------------------------------------------
# Child side: one scenario in this process
# --------------------------------------------------------------------------------------


class GcMonitor:
    """Counts Python gc collections (and their pause) while `active`."""

    def __init__(self):
        self.active = False
        self.collections = 0
        self.pause_ns = 0
        self._start = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase, info):
        if not self.active:
            return
        if phase == "start":
            self._start = time.perf_counter_ns()
        else:
            self.collections += 1
            self.pause_ns += time.perf_counter_ns() - self._start


def numerical(t, loss=None) -> dict:
    import torch
    t = t.detach()
    finite = t[torch.isfinite(t)]
    return {
        "nan_count": int(torch.isnan(t).sum().item()),
        "inf_count": int(torch.isinf(t).sum().item()),
        "max_abs_output": float(finite.abs().max().item()) if finite.numel() else None,
        "loss": loss,
    }


def make_batch(cfg, batch: int, seq: int, seed: int):
    import torch
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.vocab, (batch, seq), generator=gen)
    targets = torch.randint(0, cfg.vocab, (batch, seq), generator=gen)
    return tokens, targets


class Workload:
    """One iteration of a model scenario: `run()` returns (output tensor, loss or None)."""

    def __init__(self, kind: str, params: dict, seed: int):
        import torch
        import moe_torch as mt
        self.torch, self.mt = torch, mt
        self.kind, self.params = kind, params
        self.cfg = mt.Config.preset(params["preset"])
        self.model = mt.MoETransformer(self.cfg, seed=seed)
        self.tokens, self.targets = make_batch(self.cfg, params["batch"], params["seq"], seed)
        self.trainer = mt.Trainer(self.model) if kind.endswith("train") else None

    def run(self):
        if self.trainer is not None:
            r = self.trainer.train_step(self.tokens, self.targets)
            return r["logits"], r["total"]
        with self.torch.inference_mode():
            logits, _ = self.model(self.tokens)
        return logits, None

    def flops(self) -> int:
        counts = self.model.expert_counts()
        b, s = self.params["batch"], self.params["seq"]
        if self.trainer is not None:
            return self.mt.train_flops(self.cfg, b, s, counts)
        return self.mt.forward_flops(self.cfg, b, s, counts)


def time_loop(fn, warmup: int, trials: int, gcmon: GcMonitor):
    """Runs fn warmup+trials times; returns (warmup_ns, timings_ns, cpu_ns, last result)."""
    warm, wall, cpu = [], [], []
    result = None
    for _ in range(warmup):
        t0 = time.perf_counter_ns()
        result = fn()
        warm.append(time.perf_counter_ns() - t0)
    gcmon.active = True
    for _ in range(trials):
        c0 = time.process_time_ns()
        t0 = time.perf_counter_ns()
        result = fn()
        t1 = time.perf_counter_ns()
        c1 = time.process_time_ns()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
    gcmon.active = False
    return warm, wall, cpu, result


def parallel_worker(rank, kind, params, threads, rounds, barrier, conn):
    """One independent model per process; one iteration per barrier-synchronised round."""
    import torch
    torch.set_num_threads(threads)
    gcmon = GcMonitor()
    try:
        w = Workload("train" if kind == "par_train" else "forward", params, SEED + rank)
        cpu, gcs, pauses, spans = [], [], [], []
        out = None
        for _ in range(rounds):
            barrier.wait()
            s0 = time.perf_counter_ns()  # CLOCK_MONOTONIC: comparable across processes
            gcmon.active, gcmon.collections, gcmon.pause_ns = True, 0, 0
            c0 = time.process_time_ns()
            out = w.run()
            cpu.append(time.process_time_ns() - c0)
            spans.append((s0, time.perf_counter_ns()))
            gcmon.active = False
            gcs.append(gcmon.collections)
            pauses.append(gcmon.pause_ns)
            barrier.wait()
        logits, loss = out
        conn.send({"cpu": cpu, "spans": spans, "gc": gcs, "pause": pauses,
                   "numerical": numerical(logits, loss),
                   "flops": w.flops(),
                   "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
    except BaseException as e:  # report instead of leaving the barrier hanging
        barrier.abort()
        conn.send({"error": f"worker {rank}: {type(e).__name__}: {e}"})
    finally:
        conn.close()


def run_parallel(kind, params, threads, warmup, trials):
    import multiprocessing as mp
    # fork before this process has run any torch op (no OpenMP/BLAS pool to inherit)
    ctx = mp.get_context("fork")
    n = params["threads"]
    rounds = warmup + trials
    barrier = ctx.Barrier(n + 1)
    pipes, procs = [], []
    for rank in range(n):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=parallel_worker,
                        args=(rank, kind, params, threads, rounds, barrier, child))
        p.start()
        child.close()
        pipes.append(parent)
        procs.append(p)
    c_parent = []
    try:
        for _ in range(rounds):
            barrier.wait(timeout=300)
            c0 = time.process_time_ns()
            barrier.wait(timeout=300)
            c_parent.append(time.process_time_ns() - c0)
    except Exception:
        pass  # a broken barrier: the workers report why
    reports = [pipe.recv() for pipe in pipes]
    for p in procs:
        p.join()
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise RuntimeError("; ".join(errors))
    # A round's wall time: from the first worker's start to the last worker's end, from the
    # workers' own clocks. (Timing it in this process between the two barriers measured
    # 45 us for rounds of two 1.1 ms forwards: with every core busy this process woke late
    # from the first barrier, after the workers had started.)
    walls = [max(r["spans"][i][1] for r in reports) - min(r["spans"][i][0] for r in reports)
             for i in range(rounds)]
    cpu = [c_parent[i] + sum(r["cpu"][i] for r in reports) for i in range(rounds)]
    nums = [r["numerical"] for r in reports]
    maxabs = [x["max_abs_output"] for x in nums if x["max_abs_output"] is not None]
    return {
        "warmup_timings_ns": walls[:warmup],
        "timings_ns": walls[warmup:],
        "cpu_times_ns": cpu[warmup:],
        "gc": {"collections": sum(sum(r["gc"][warmup:]) for r in reports),
               "pause_ns": sum(sum(r["pause"][warmup:]) for r in reports)},
        "numerical": {"nan_count": sum(x["nan_count"] for x in nums),
                      "inf_count": sum(x["inf_count"] for x in nums),
                      "max_abs_output": max(maxabs) if maxabs else None,
                      "loss": nums[0]["loss"]},
        "flops": sum(r["flops"] for r in reports),
        "tokens_per_iter": n * params["batch"] * params["seq"],
        "memory_extra": {"worker_peak_rss_bytes": [r["rss"] for r in reports],
                         "driver_peak_rss_bytes":
                             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024},
        "peak_rss_bytes": sum(r["rss"] for r in reports),
    }


def run_one(sid: str, threads: int, warmup: int, trials: int) -> dict:
    axis, kind, params = SCENARIOS[sid]
    import torch
    sys.path.insert(0, HERE)
    import moe_torch as mt
    import_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    torch.manual_seed(SEED)
    gcmon = GcMonitor()
    extra_mem = {}
    if kind in ("par_forward", "par_train"):
        r = run_parallel(kind, params, threads, warmup, trials)
        warm, wall, cpu = r["warmup_timings_ns"], r["timings_ns"], r["cpu_times_ns"]
        gcinfo, num, flops, tokens = r["gc"], r["numerical"], r["flops"], r["tokens_per_iter"]
        peak_rss = r["peak_rss_bytes"]
        extra_mem = r["memory_extra"]
    else:
        torch.set_num_threads(threads)
        gen = torch.Generator().manual_seed(SEED)
        tokens = 0
        if kind == "matmul":
            n = params["n"]
            a = torch.randn(n, n, generator=gen)
            b = torch.randn(n, n, generator=gen)
            c = torch.empty(n, n)
            fn = lambda: torch.matmul(a, b, out=c)  # noqa: E731
            flops = 2 * n ** 3
        elif kind == "softmax":
            x = torch.randn(params["n"], generator=gen)
            fn = lambda: torch.softmax(x, dim=0)  # noqa: E731
            flops = 0
        elif kind == "rmsnorm":
            x = torch.randn(params["batch"], params["seq"], params["hidden"], generator=gen)
            g = torch.ones(params["hidden"])
            fn = lambda: mt.rms_norm(x, g, 1e-6)  # noqa: E731
            flops = 0
        elif kind == "cold":
            cfg = mt.Config.preset(params["preset"])
            tok, _ = make_batch(cfg, params["batch"], params["seq"], SEED)
            holder = {}

            def fn():
                model = mt.MoETransformer(cfg, seed=SEED)
                with torch.inference_mode():
                    logits, _ = model(tok)
                holder["model"] = model
                return logits
            tokens = params["batch"] * params["seq"]
        else:
            w = Workload(kind, params, SEED)
            fn = w.run
            tokens = params["batch"] * params["seq"]
        warm, wall, cpu, out = time_loop(fn, warmup, trials, gcmon)
        if kind in ("forward", "train"):
            logits, loss = out
            num = numerical(logits, loss)
            flops = w.flops()
        elif kind == "cold":
            num = numerical(out)
            m = holder["model"]
            flops = mt.forward_flops(m.cfg, params["batch"], params["seq"], m.expert_counts())
        else:
            num = numerical(out)
        gcinfo = {"collections": gcmon.collections, "pause_ns": gcmon.pause_ns}
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    p = dict(params)
    p.setdefault("threads", 1)
    if "preset" in p:
        p["hidden"] = mt.Config.preset(p["preset"]).hidden
    p["torch_threads"] = threads
    if threads > 1:
        p["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    return {
        "warmup_timings_ns": warm, "timings_ns": wall, "cpu_times_ns": cpu,
        "memory": {"peak_rss_bytes": peak_rss, "alloc_bytes": None, "alloc_count": None,
                   "import_rss_bytes": import_rss, **extra_mem},
        "gc": gcinfo, "numerical": num, "flops": int(flops), "tokens_per_iter": tokens,
        "params": p,
    }


def peak_probe(n: int = 1024, reps: int = 5) -> dict:
    import torch
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    torch.matmul(a, b, out=c)
    c0 = time.process_time_ns()
    best = min(_timed(lambda: torch.matmul(a, b, out=c)) for _ in range(reps))
    cpu = (time.process_time_ns() - c0) / reps
    return {"fma_gflops": None, "sgemm_gflops": 2 * n ** 3 / best, "sgemm_n": n,
            "sgemm_cpu_gflops": 2 * n ** 3 / cpu,
            "method": f"torch.matmul {n}x{n}x{n} float32, 1 thread, best of {reps} "
                      "(no FMA-throughput probe in Python: fma_gflops is null)"}


def _timed(fn) -> int:
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


# --------------------------------------------------------------------------------------
# Driver side
# --------------------------------------------------------------------------------------


def child_env(threads: int, wait_policy: str = "passive") -> dict:
    env = dict(os.environ)
    if threads > 1 and wait_policy != "default":
        env["OMP_WAIT_POLICY"] = wait_policy.upper()
    # pin every pool torch may use to the run's thread count (OpenBLAS reads it at load)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS"):
        env[var] = str(threads)
    return env


def run_child(args: list[str], threads: int, wait_policy: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *args, "--omp-wait-policy", wait_policy]
    proc = subprocess.run(cmd, env=child_env(threads, wait_policy), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(args)}: no JSON line in output:\n{proc.stdout}")
    return json.loads(lines[-1])


def sh(cmd: list[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True,
                              cwd=REPO).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def cpu_info() -> dict:
    model, flags, cores = "unknown", "", os.cpu_count() or 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    return {"model": model, "logical_cores": cores, "avx512": " avx512f" in f" {flags} "}


def library_versions() -> dict:
    """torch version and the BLAS library torch's process actually maps."""
    code = ("import torch, json\n"
            "torch.matmul(torch.ones(8, 8), torch.ones(8, 8))\n"
            "libs = sorted({l.split()[-1] for l in open('/proc/self/maps') "
            "if 'blas' in l or 'blis' in l or 'mkl' in l})\n"
            "print(json.dumps({'torch': torch.__version__, 'python': __import__('platform')"
            ".python_version(), 'libs': libs, 'config': torch.__config__.show()}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=child_env(1), check=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    libs = {"torch": info["torch"]}
    for path in info["libs"]:
        m = re.search(r"libopenblas\w*-r(\d+\.\d+\.\d+)", path)
        if m:
            libs["openblas"] = m.group(1)
        elif "blis" in path:
            libs["blis"] = os.path.basename(os.path.dirname(path)) or path
    blas = re.search(r"BLAS_INFO=(\w+)", info["config"])
    return {"libraries": libs, "python": info["python"], "torch": info["torch"],
            "blas_paths": info["libs"], "torch_blas_info": blas.group(1) if blas else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="PyTorch eager baseline (docs/bench-schema.md)")
    ap.add_argument("--json", default=os.path.join(REPO, "benchmarks", "pytorch.json"),
                    help="output path (default benchmarks/pytorch.json)")
    ap.add_argument("--filter", default=None, help="regex on scenario ids (incl. @ suffix)")
    ap.add_argument("--quick", action="store_true", help="1 warm-up + 3 trials")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--torch-threads", default="1,2",
                    help="comma-separated torch thread counts, one pass each (default 1,2)")
    ap.add_argument("--omp-wait-policy", choices=("passive", "active", "default"),
                    default="passive",
                    help="OMP_WAIT_POLICY for passes with more than one torch thread "
                         "(default passive; 'default' leaves the environment alone)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--peak", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    trials = args.trials if args.trials is not None else (3 if args.quick else 10)
    if trials < 1 or warmup < 0:
        ap.error(f"--trials {trials} must be >= 1 and --warmup {warmup} >= 0")

    if args.one is not None or args.peak:
        # before torch is imported: OpenBLAS sizes its pool when it is loaded
        threads = 1 if args.peak else args.threads
        os.environ.update({k: v for k, v in child_env(threads, args.omp_wait_policy).items()
                           if k.endswith("_THREADS") or k == "OMP_WAIT_POLICY"})
    if args.one is not None:  # child: one scenario, one JSON line on stdout
        if args.one not in SCENARIOS:
            ap.error(f"unknown scenario {args.one!r}; allowed: {', '.join(SCENARIOS)}")
        print(json.dumps(run_one(args.one, args.threads, warmup, trials)))
        return 0
    if args.peak:
        print(json.dumps(peak_probe()))
        return 0

    thread_passes = [int(t) for t in args.torch_threads.split(",") if t.strip()]
    if not thread_passes or min(thread_passes) < 1:
        ap.error(f"--torch-threads {args.torch_threads!r}: positive integers expected")
    flt = re.compile(args.filter) if args.filter else None
    jobs = []
    for threads in thread_passes:
        for sid in SCENARIOS:
            full = sid if threads == 1 else f"{sid}@torch_threads={threads}"
            if flt is None or flt.search(full):
                jobs.append((full, sid, threads))
    if not jobs:
        print(f"no scenario matches --filter {args.filter!r}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    versions = library_versions()
    peak = run_child(["--peak"], 1, args.omp_wait_policy)
    print(f"[bench_pytorch] torch {versions['torch']}, BLAS {versions['blas_paths']}, "
          f"sgemm peak {peak['sgemm_gflops']:.1f} GFLOP/s; {len(jobs)} scenarios, "
          f"{warmup} warm-up + {trials} trials", file=sys.stderr)
    metadata = {
        "language": "python",
        "implementation": "pytorch-eager",
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_rev": sh(["git", "rev-parse", "HEAD"]) or "unknown",
        "compiler": {"python": versions["python"], "torch": versions["torch"],
                     "torch_blas_info": versions["torch_blas_info"],
                     "blas_library": versions["blas_paths"]},
        "cpu": cpu_info(),
        "os": " ".join(platform.uname()[i] for i in (0, 2, 4)),
        "libraries": versions["libraries"],
        "threads": {"blas_threads": thread_passes[0], "omp_num_threads": thread_passes[0],
                    "openblas_num_threads": thread_passes[0], "blis_num_threads": None,
                    "torch_threads": thread_passes[0], "torch_thread_passes": thread_passes,
                    "omp_wait_policy": (args.omp_wait_policy.upper() if max(thread_passes) > 1
                                        and args.omp_wait_policy != "default"
                                        else os.environ.get("OMP_WAIT_POLICY")),
                    "note": "each pass sets torch.set_num_threads(n) and OMP/OPENBLAS/MKL_"
                            "NUM_THREADS=n in every scenario process; parallel_* workers "
                            "use n threads each. " + WAIT_NOTE},
        "seed": SEED,
        "warmup": warmup,
        "trials": trials,
        "default_policy": "float/row/pytorch/eager",
        "peak": peak,
        "gc_note": "Python's cyclic gc, observed with gc.callbacks: collections and their "
                   "wall-clock pause during the timed trials (parallel_*: summed over "
                   "workers). Tensors themselves are freed by reference counting.",
        "alloc_note": "memory.alloc_bytes/alloc_count are null: PyTorch's CPU allocator and "
                      "Python's allocator are not instrumented; not comparable with C++.",
        "memory_note": "peak_rss_bytes is ru_maxrss of a fresh process running one scenario "
                       "and includes the Python interpreter and libtorch (import_rss_bytes "
                       "is the peak right after `import torch`). parallel_*: the sum of the "
                       "worker processes' peaks (forked; shared library pages are counted "
                       "once per worker).",
        "eager_note": "float32, eager mode; forward scenarios run under "
                      "torch.inference_mode(); train steps are forward + cross-entropy + aux "
                      "+ backward (autograd) + global-norm clip + AdamW (torch.optim.AdamW, "
                      "lr schedule of the contract, defaults lr 1e-4, warmup 1000).",
        "flop_counting": FLOP_COUNTING,
        "parallel_note": PARALLEL_NOTE,
    }

    scenarios = []
    for i, (full, sid, threads) in enumerate(jobs, 1):
        axis, kind, _ = SCENARIOS[sid]
        t0 = time.perf_counter()
        r = run_child(["--one", sid, "--threads", str(threads), "--warmup", str(warmup),
                       "--trials", str(trials)], threads, args.omp_wait_policy)
        st = stats(r["timings_ns"])
        cpu_sorted = sorted(r["cpu_times_ns"])
        med_s = st["median_ns"] / 1e9
        entry = {
            "id": full,
            "base_id": sid,
            "axis": axis,
            "params": r["params"],
            "policy": {"scalar": "float", "layout": "row", "backend": "pytorch",
                       "dispatch": "eager",
                       "name": "float/row/pytorch/eager"
                               + ("" if threads == 1 else f"/torch_threads={threads}")},
            "warmup_timings_ns": r["warmup_timings_ns"],
            "timings_ns": r["timings_ns"],
            **st,
            "cpu_times_ns": r["cpu_times_ns"],
            "cpu_median_ns": int(round(quantile(cpu_sorted, 0.5))),
            "memory": r["memory"],
            "gc": r["gc"],
            "numerical": r["numerical"],
            "flops": r["flops"],
            "tokens_per_iter": r["tokens_per_iter"],
            "throughput_tokens_per_sec": r["tokens_per_iter"] / med_s if med_s > 0 else None,
            "throughput_inferences_per_sec": 1.0 / med_s if med_s > 0 else None,
            "derived": {
                "alloc_rate_bytes_per_sec": None,
                "gflops": r["flops"] / st["median_ns"] if r["flops"] else None,
                "peak_fraction": None,
                "speedup": None,
                "cold_warm_ratio": None,
            },
        }
        scenarios.append(entry)
        print(f"[{i:2d}/{len(jobs)}] {full:<42s} median {st['median_ns'] / 1e3:11.1f} us  "
              f"cpu {entry['cpu_median_ns'] / 1e3:11.1f} us  "
              f"rss {r['memory']['peak_rss_bytes'] / 2**20:7.1f} MiB  "
              f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    # cross-scenario derived fields, within each thread pass
    by_id = {s["id"]: s for s in scenarios}
    for s in scenarios:
        suffix = s["id"][len(s["base_id"]):]
        m = re.fullmatch(r"parallel(_train)?_T(\d+)", s["base_id"])
        if m:
            t1 = by_id.get(f"parallel{m.group(1) or ''}_T1{suffix}")
            if t1:
                s["derived"]["speedup"] = int(m.group(2)) * t1["median_ns"] / s["median_ns"]
        if s["base_id"] == "dispatch_cold":
            warm = by_id.get(f"dispatch_warm{suffix}")
            if warm:
                s["derived"]["cold_warm_ratio"] = s["median_ns"] / warm["median_ns"]

    metadata["run_seconds"] = round(time.perf_counter() - started, 1)
    out = {"schema_version": 1, "metadata": metadata, "scenarios": scenarios}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.json)
    print(f"[bench_pytorch] wrote {args.json} ({len(scenarios)} scenarios, "
          f"{metadata['run_seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
