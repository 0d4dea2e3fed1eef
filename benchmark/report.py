#!/usr/bin/env python3
"""Turns the benchmark JSON files into docs/bench-results.md and its plots.

    python3 benchmark/report.py --cpp benchmarks/cpp.json [--pytorch benchmarks/pytorch.json]
        [--out docs/bench-results.md] [--img-dir docs/bench-img] [--src-root .]
        [--img-format svg|png] [--no-plots] [--strict]

Both inputs follow docs/bench-schema.md. --pytorch is optional: when the file is absent
the page says so and has no comparison columns. Plots need matplotlib (Debian:
python3-matplotlib; Agg backend, no display). If `python3` is another interpreter (pyenv,
a virtualenv) without matplotlib, the script retries once with /usr/bin/python3; if that
fails too it writes the page without plots and says so. Every table and finding is computed
from the data: a missing scenario or field shows as "—" and is listed in a warning box at
the top of the page.

Helper modules: report_code.py (static code metrics), report_plots.py (figures).

Exit status: 0 page written (warnings are in the page and on stderr); 1 --cpp unreadable
or not a benchmark file, or the page could not be written; 2 bad command line; 3 --strict
and a reference scenario is missing or failed.
"""

import argparse
import datetime
import importlib.util
import json
import math
import os
import re
import shlex
import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_code  # noqa: E402  (after the path set-up)
from report_common import cell, code, dig, num  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian's python3-matplotlib is importable
REEXEC_ENV = "ROSETTA_REPORT_REEXEC"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REFERENCE_IDS = (
    ["mem_train_step"] + [f"mem_scale_batch_{b}" for b in (1, 2, 4, 8)]
    + [f"mem_scale_seq_{s}" for s in (8, 16, 32, 64)]
    + ["kernel_matmul", "kernel_softmax", "kernel_rmsnorm", "dispatch_warm", "dispatch_cold"]
    + [f"parallel_T{t}" for t in (1, 2, 4)] + [f"parallel_train_T{t}" for t in (1, 2, 4)]
    + ["scale_forward_256", "scale_train_256"])
AXES = ("memory", "compiler", "dispatch", "parallel", "scale")
AXIS_TEXT = {
    "memory": "Memory: one training step and forward passes scaled in batch and sequence length",
    "compiler": "Compiler: single kernels (matmul, softmax, RMSNorm)",
    "dispatch": "Dispatch: warm forward pass, and cold (first call, including set-up)",
    "parallel": "Parallel: forward and training step with T threads (tokens counted over all "
                "threads; speed-up = T·median(T1)/median(T))",
    "scale": "Scale: the `small` preset (hidden 256)",
}
FAMILIES = {  # id prefix -> (x parameter, ids)
    "batch": ("batch", [f"mem_scale_batch_{b}" for b in (1, 2, 4, 8)]),
    "seq": ("seq", [f"mem_scale_seq_{s}" for s in (8, 16, 32, 64)]),
}
PARALLEL = {"forward": [f"parallel_T{t}" for t in (1, 2, 4)],
            "train": [f"parallel_train_T{t}" for t in (1, 2, 4)]}
DIMS = ("backend", "layout", "scalar", "dispatch")
ORDER = {"backend": ["naive", "eigen", "blis", "openblas", "none", "pytorch"],
         "layout": ["row", "col"], "scalar": ["float", "double"],
         "dispatch": ["static", "virtual", "eager"]}
VOCAB = {"scalar": {"float", "double"}, "layout": {"row", "col"},
         "dispatch": {"static", "virtual", "eager"}}
TORCH_2T = "@torch_threads=2"
PROBE_MODES = (("forward", "dispatch_warm"), ("train", "mem_train_step"))  # probe mode, scenario
RSS_TARGET_TINY = 8e6  # bytes: the goal for the peak RSS of tiny scenarios (issue #6)
NA = "n/a"  # a memory field the file does not have (older cpp.json)
HEATMAP_BASES = ("dispatch_warm", "mem_train_step")
DASH = "—"


# --- small helpers ----------------------------------------------------------------------------
def quantile(values, q):
    """Linear interpolation between closest ranks (as the schema's p95 and quartiles)."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def sig(x, digits=3):
    if x is None:
        return DASH
    if x == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(x))))
    decimals = max(0, digits - 1 - mag)
    return f"{x:,.{decimals}f}"


def fmt_time(ns):
    ns = num(ns)
    if ns is None:
        return DASH
    for div, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if abs(ns) >= div:
            return f"{sig(ns / div)} {unit}"
    return f"{ns:.0f} ns"


def fmt_ratio(r, digits=2):
    return DASH if r is None else f"{r:.{digits}f}×"


def fmt_pct(frac):
    if frac is None:
        return DASH
    return f"{100 * frac:.2g} %" if frac < 0.01 else f"{100 * frac:.1f} %"


def fmt_int(x):
    x = num(x)
    return DASH if x is None else f"{x:,.0f}"


def fmt_mb(b, missing=DASH):
    b = num(b)
    return missing if b is None else f"{b / 1e6:.1f}"


def md_text(s):
    """Free text from a JSON file as Markdown: `*`, `_`, `<`, `[` and `]` escaped outside
    backtick code spans (so '2*m*n*k' stays literal)."""
    def esc(t):
        return re.sub(r"([*_<\[\]\\])", r"\\\1", t)
    parts = str(s).split("`")
    tail = parts.pop() if len(parts) % 2 == 0 else None  # after an unbalanced backtick
    parts = [esc(t) if i % 2 == 0 else t for i, t in enumerate(parts)]
    text = "`".join(parts)
    return text if tail is None else text + "\\`" + esc(tail)


def table(headers, rows, align=None):
    """A GitHub-flavoured Markdown table; align: string of 'l'/'r' per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    out = ["| " + " | ".join(cell(h) for h in headers) + " |",
           "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    for r in rows:
        r = list(r) + [DASH] * (len(headers) - len(r))
        out.append("| " + " | ".join(cell(c) for c in r) + " |")
    return out


def summary(values):
    """(median, min, max, n) of the finite values, or None."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals)


def fmt_summary(s, what):
    """'1.02× (range 0.98–1.05×) over 16 <what>'."""
    if not s:
        return None
    med, lo, hi, n = s
    if n == 1:
        return f"{med:.2f}× (1 {what.rstrip('s') if what.endswith('s') else what})"
    return f"{med:.2f}× (range {lo:.2f}–{hi:.2f}×) over {n} {what}"


def sort_key(dim, value):
    order = ORDER.get(dim, [])
    return (order.index(value) if value in order else len(order), str(value))


def policy_key(p):
    return tuple(sort_key(d, p.get(d)) for d in DIMS)


def parse_policy_text(text):
    """'double/col/eigen/virtual' -> {scalar, layout, backend, dispatch} (what is there)."""
    out = {}
    if not isinstance(text, str) or "=" in text:
        return out
    for tok in text.split("/"):
        tok = tok.strip()
        for dim, words in VOCAB.items():
            if tok in words and dim not in out:
                out[dim] = tok
                break
        else:
            if tok and "backend" not in out:
                out["backend"] = tok
    return out


def policy_name(p, dims=DIMS):
    return "/".join(str(p.get(d) or DASH) for d in ("scalar", "layout", "backend", "dispatch")
                    if d in dims)


# --- the data ---------------------------------------------------------------------------------
class Run:
    """One scenario of one file, with every value the report needs (None when absent)."""

    def __init__(self, raw, bench):
        self.raw = raw
        self.id = raw["id"]
        base = raw.get("base_id")
        self.base_id = base if isinstance(base, str) and base else self.id.split("@", 1)[0]
        axis = raw.get("axis")
        self.axis = axis if isinstance(axis, str) and axis else default_axis(self.id)
        err = raw.get("error")
        self.error = str(err) if err not in (None, "", False) else None
        self.params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
        self.policy = self._policy(bench)
        t = raw.get("timings_ns")
        t = t if isinstance(t, list) else []
        self.timings = [v for v in (num(x) for x in t) if v is not None]
        self.median = num(raw.get("median_ns"))
        if self.median is None and self.timings:
            self.median = quantile(self.timings, 0.5)
        self.iqr = num(raw.get("iqr_ns"))
        if len(self.timings) >= 2:
            self.q1, self.q3 = quantile(self.timings, 0.25), quantile(self.timings, 0.75)
            if self.iqr is None:
                self.iqr = self.q3 - self.q1
        elif self.median is not None and self.iqr is not None:
            self.q1, self.q3 = self.median - self.iqr / 2, self.median + self.iqr / 2
        else:
            self.q1 = self.q3 = None
        self.p95 = num(raw.get("p95_ns"))
        if self.p95 is None and self.timings:
            self.p95 = quantile(self.timings, 0.95)
        self.cpu_median = num(raw.get("cpu_median_ns"))
        if self.cpu_median is None and isinstance(raw.get("cpu_times_ns"), list):
            cpu = [v for v in (num(x) for x in raw["cpu_times_ns"]) if v is not None]
            self.cpu_median = quantile(cpu, 0.5)
        self.threads = num(self.params.get("threads", self.params.get("thread_count")))
        self.flops = num(raw.get("flops"))
        self.tokens = num(raw.get("tokens_per_iter"))
        derived = raw.get("derived") if isinstance(raw.get("derived"), dict) else {}
        self.gflops = num(derived.get("gflops"))
        if self.gflops is None and self.flops and self.median:
            self.gflops = self.flops / self.median
        self.peak_frac = num(derived.get("peak_fraction"))
        if self.peak_frac is None and self.gflops and bench.peak:
            self.peak_frac = self.gflops / (bench.peak * (self.threads or 1))
        self.tok_s = num(raw.get("throughput_tokens_per_sec"))
        if not self.tok_s:
            self.tok_s = self.tokens * 1e9 / self.median if self.tokens and self.median else None
        self.speedup = num(derived.get("speedup"))
        self.cold_warm = num(derived.get("cold_warm_ratio"))
        self.rss = num(dig(raw, "memory", "peak_rss_bytes"))
        self.rss_anon = num(dig(raw, "memory", "rss_anon_bytes"))
        self.rss_file = num(dig(raw, "memory", "rss_file_bytes"))
        self.rss_base = num(dig(raw, "memory", "baseline_rss_bytes"))
        self.alloc_b = num(dig(raw, "memory", "alloc_bytes"))
        self.alloc_n = num(dig(raw, "memory", "alloc_count"))
        self.nan = num(dig(raw, "numerical", "nan_count"))
        self.inf = num(dig(raw, "numerical", "inf_count"))

    def _policy(self, bench):
        raw = self.raw.get("policy") if isinstance(self.raw.get("policy"), dict) else {}
        p = {d: raw.get(d) for d in DIMS if isinstance(raw.get(d), str) and raw.get(d)}
        sources = [raw.get("name")]
        if "@" in self.id:
            sources.append(self.id.split("@", 1)[1])
        else:
            sources.append(bench.default_policy)
        for text in sources:
            for d, v in parse_policy_text(text).items():
                p.setdefault(d, v)
        return p

    def x(self, param):
        """A parameter as a number, or the trailing number of the base id."""
        v = num(self.params.get(param, self.params.get(param + "_len")))
        if v is None:
            tail = self.base_id.rsplit("_", 1)[-1].lstrip("T")
            v = float(tail) if tail.isdigit() else None
        return v

    @property
    def usable(self):
        return self.error is None and self.median is not None and self.median > 0


def default_axis(sid):
    base = sid.split("@", 1)[0]
    for prefix, axis in (("mem_", "memory"), ("kernel_", "compiler"), ("dispatch_", "dispatch"),
                         ("parallel_", "parallel"), ("scale_", "scale")):
        if base.startswith(prefix):
            if "@" not in sid:
                return axis
            return "cpp_kernels" if prefix == "kernel_" else "cpp_grid"
    return "other"


class Bench:
    """One benchmark file: metadata, runs by id, and what was wrong with it."""

    def __init__(self, path, label):
        self.path, self.label = path, label
        self.notes = []          # problems, shown in the warning box
        self.metadata, self.runs, self.by_id = {}, [], {}
        self.peak = self.default_policy = None
        self.loaded = False
        self.error = None
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            self.error = f"{path}: no such file"
            return
        except OSError as e:
            self.error = f"{path}: {e.strerror}"
            return
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            self.error = f"{path}: not valid JSON ({e})"
            return
        if not isinstance(doc, dict) or not isinstance(doc.get("scenarios"), list):
            self.error = f"{path}: not a benchmark file (no `scenarios` list)"
            return
        self.loaded = True
        if doc.get("schema_version") != 1:
            self.notes.append(f"{label}: `schema_version` is {doc.get('schema_version')!r}, "
                              "this script reads version 1")
        self.metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        if not self.metadata:
            self.notes.append(f"{label}: no `metadata` object")
        self.peak = num(dig(self.metadata, "peak", "fma_gflops"))
        dp = self.metadata.get("default_policy")
        self.default_policy = dp if isinstance(dp, str) else None
        skipped = 0
        for raw in doc["scenarios"]:
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
                skipped += 1
                continue
            if raw["id"] in self.by_id:
                self.notes.append(f"{label}: duplicate scenario id {code(raw['id'])} "
                                  "(the first one is used)")
                continue
            run = Run(raw, self)
            self.runs.append(run)
            self.by_id[run.id] = run
        if skipped:
            self.notes.append(f"{label}: {skipped} scenario entr{'y' if skipped == 1 else 'ies'} "
                              "without a string `id` skipped")
        self._derive()

    def _derive(self):
        """Speed-ups and cold/warm ratios the file left out (same definitions as the schema)."""
        for run in self.runs:
            suffix = run.id[len(run.base_id):]
            for ids in PARALLEL.values():
                if run.base_id in ids and run.speedup is None and run.usable:
                    t1 = self.get(ids[0] + suffix)
                    n = run.threads or run.x("threads")
                    if t1 and n:
                        run.speedup = n * t1.median / run.median
            if run.base_id == "dispatch_cold" and run.cold_warm is None and run.usable:
                warm = self.get("dispatch_warm" + suffix)
                if warm:
                    run.cold_warm = run.median / warm.median

    def get(self, sid):
        """The run with this id if it has a usable median, else None."""
        run = self.by_id.get(sid)
        return run if run is not None and run.usable else None

    def axis_runs(self, axis):
        return [r for r in self.runs if r.axis == axis]

    @property
    def cores(self):
        return num(dig(self.metadata, "cpu", "logical_cores"))


# --- the page ---------------------------------------------------------------------------------
class Page:
    def __init__(self, args, cpp, torch):
        self.args, self.cpp, self.torch = args, cpp, torch
        self.lines = []
        self.images = []       # (file name, alt text, caption)
        self.plot_note = None  # why there are no plots

    def add(self, *lines):
        self.lines.extend(lines)

    def par(self, *lines):
        self.lines.extend(lines)
        self.lines.append("")

    # -- header and warnings
    def header(self, command, when):
        self.add("<!-- Generated by benchmark/report.py; do not edit, rerun the script. -->",
                 "# rosetta benchmark results", "")
        self.par(f"*Generated by `benchmark/report.py` on {when} with:*", "",
                 "```sh", command, "```")
        rows = []
        for b in (self.cpp, self.torch):
            if b is None:
                continue
            md = b.metadata
            rows.append([b.label, code(b.path), str(md.get("timestamp") or DASH),
                         code(str(md["git_rev"]).strip()) if str(md.get("git_rev") or "").strip()
                         else DASH,
                         str(len(b.runs)) if b.loaded else "not loaded"])
        self.add(*table(["input", "file", "run timestamp (UTC)", "git rev", "scenarios"], rows,
                        "lllll"))
        self.add("")

    def warnings(self):
        cpp, torch = self.cpp, self.torch
        missing = [i for i in REFERENCE_IDS if i not in cpp.by_id]
        failed = [r for r in cpp.runs if r.error]
        no_median = [r.id for r in cpp.runs if not r.error and r.median is None]
        box = []
        if missing:
            box.append(f"**{len(missing)} of the 22 reference scenarios are missing** from "
                       f"{code(cpp.path)}: " + ", ".join(code(i) for i in missing) + ".")
        if failed:
            box.append(f"**{len(failed)} scenario(s) failed** (an `error` field, no timings): "
                       + "; ".join(f"{code(r.id)}: {md_text(r.error)}" for r in failed[:20])
                       + (" …" if len(failed) > 20 else "") + ".")
        if no_median:
            box.append("No median (and no `timings_ns`) for: "
                       + ", ".join(code(i) for i in no_median[:20]) + ".")
        bad = [r for b in (cpp, torch) if b and b.loaded for r in b.runs
               if (r.nan or 0) > 0 or (r.inf or 0) > 0]
        if bad:
            box.append("**Non-finite outputs**: " + ", ".join(
                f"{code(r.id)} ({fmt_int(r.nan)} NaN, {fmt_int(r.inf)} Inf)"
                for r in bad[:20]) + ".")
        if cpp.metadata.get("quick") is True:
            box.append("This is a `--quick` run (fewer trials): numbers are indicative only.")
        if torch is not None and torch.loaded:
            tmiss = [i for i in REFERENCE_IDS if i not in torch.by_id]
            if tmiss:
                box.append(f"PyTorch file lacks {len(tmiss)} reference id(s): "
                           + ", ".join(code(i) for i in tmiss) + ".")
            m1, m2 = dig(cpp.metadata, "cpu", "model"), dig(torch.metadata, "cpu", "model")
            if m1 and m2 and m1 != m2:
                box.append(f"The two files come from different CPUs ({md_text(m1)} vs "
                           f"{md_text(m2)}): the PyTorch ratios compare machines, not "
                           "implementations.")
        elif torch is not None and torch.error:
            box.append(f"PyTorch baseline not used: {md_text(torch.error)}.")
        box.extend(n if n.endswith(".") else n + "." for n in cpp.notes)
        if torch is not None:
            box.extend(n if n.endswith(".") else n + "." for n in torch.notes)
        if not cpp.peak:
            box.append("`metadata.peak.fma_gflops` is missing: no % of peak.")
        over = [r for r in cpp.runs if r.usable and r.peak_frac and r.peak_frac > 1.0]
        if over:
            box.append(f"{len(over)} scenario(s) exceed 100 % of the measured FMA peak ("
                       + ", ".join(f"{code(r.id)} {fmt_pct(r.peak_frac)}" for r in over[:5])
                       + (" …" if len(over) > 5 else "")
                       + "): the peak probe or the FLOP count is off.")
        if box:
            self.add("> [!WARNING]")
            for i, b in enumerate(box):
                if i:
                    self.add(">")
                self.add(f"> - {b}" if len(box) > 1 else f"> {b}")
            self.add("")
        return missing, failed

    # -- 1. methodology
    def methodology(self):
        cpp, torch = self.cpp, self.torch
        md = cpp.metadata
        self.par("## 1. Methodology")
        comp = md.get("compiler") if isinstance(md.get("compiler"), dict) else {}
        cpu = md.get("cpu") if isinstance(md.get("cpu"), dict) else {}
        libs = md.get("libraries") if isinstance(md.get("libraries"), dict) else {}
        threads = md.get("threads") if isinstance(md.get("threads"), dict) else {}

        def val(v):
            if v is None:
                return "unset"
            if isinstance(v, bool):
                return "yes" if v else "no"
            if isinstance(v, list):  # e.g. library paths: their file names are enough
                return " + ".join(os.path.basename(str(x)) if "/" in str(x) else str(x)
                                  for x in v)
            if isinstance(v, dict):
                return ", ".join(f"{k} {val(x)}" for k, x in v.items())
            return str(v)

        def kv(d, sep):
            return ", ".join(f"{k}{sep}{val(v)}" for k, v in d.items() if k != "note") or DASH

        rows = [
            ["CPU", "; ".join([str(cpu.get("model") or DASH)]
                              + ([f"{cpu['logical_cores']} logical cores"]
                                 if cpu.get("logical_cores") is not None else [])
                              + ([f"AVX-512: {val(cpu['avx512'])}"] if "avx512" in cpu else []))],
            ["OS", str(md.get("os") or DASH)],
            ["compiler", " ".join(str(comp[k]) for k in ("id", "version") if comp.get(k)) or DASH],
            ["build type", str(comp.get("build_type") or DASH)],
            ["flags", code(comp["flags"]) if comp.get("flags") else DASH],
            ["libraries", kv(libs, " ")],
            ["threads (as pinned)", kv(threads, "=")],
            ["default policy (reference scenarios)", code(md["default_policy"])
             if md.get("default_policy") else DASH],
            ["seed", val(md.get("seed")) if "seed" in md else DASH],
            ["warm-up / timed trials", f"{val(md.get('warmup'))} / {val(md.get('trials'))}"
             + (f" or more: until {val(md.get('min_time_s'))} s of timed trials, at most "
                f"{val(md.get('max_trials'))}" if md.get("min_time_s") else "")
             + (" (`--quick`)" if md.get("quick") is True else "")],
        ]
        if torch is not None and torch.loaded:
            tmd = torch.metadata
            tcomp = tmd.get("compiler") if isinstance(tmd.get("compiler"), dict) else {}
            tthreads = tmd.get("threads") if isinstance(tmd.get("threads"), dict) else {}
            rows.append(["PyTorch baseline", kv(tcomp, " ")])
            rows.append(["PyTorch threads", kv(tthreads, "=")])
            rows.append(["PyTorch CPU", str(dig(tmd, "cpu", "model") or DASH)])
            rows.append(["PyTorch run", f"{val(tmd.get('timestamp'))}; seed "
                         f"{val(tmd.get('seed'))}; {val(tmd.get('warmup'))} / "
                         f"{val(tmd.get('trials'))} trials"])
        self.add(*table(["", "rosetta run (`metadata`)"], rows, "ll"))
        self.add("")
        notes = []
        for label, b in (("rosetta", cpp), ("PyTorch", torch)):
            if b is None or not b.loaded:
                continue
            for k, v in b.metadata.items():
                if k.endswith("_note") and k != "gc_note" and isinstance(v, str):
                    notes.append(f"- {label} `{k}`: {md_text(v)}")
            tnote = dig(b.metadata, "threads", "note")
            if isinstance(tnote, str):
                notes.append(f"- {label} `threads.note`: {md_text(tnote)}")
        if notes:
            self.par("Notes recorded in the files' metadata:", "", *notes)
        counts = sorted({len(r.timings) for r in cpp.runs if r.timings})
        if counts and md.get("min_time_s"):
            per_run = sorted(len(r.timings) for r in cpp.runs if r.timings)
            self.par(f"Timed trials per scenario: {per_run[0]} to {per_run[-1]} "
                     f"(median {per_run[len(per_run) // 2]}).")
        elif counts and md.get("trials") is not None and counts != [md.get("trials")]:
            self.par(f"Timed trials actually found per scenario: {', '.join(map(str, counts))}.")
        inner = sorted({int(v) for r in cpp.runs for v in [num(r.params.get("inner_reps"))]
                        if v and v > 1})
        peak = md.get("peak") if isinstance(md.get("peak"), dict) else {}
        self.par(
            "**Timing.** Each scenario runs its warm-up trials, which are kept apart "
            "(`warmup_timings_ns`) and excluded from every statistic, then its timed trials, "
            "each timed with a steady wall clock (`timings_ns`)"
            + (f" — at least {md.get('trials')}, and more for a scenario whose trials are short, "
               f"until they take about {md.get('min_time_s')} s (at most "
               f"{md.get('max_trials')})" if md.get("min_time_s") else "")
            + ". Times are per iteration"
            + (f"; kernels call the kernel {'/'.join(map(str, inner))} times per trial and "
               "report the time per call (`params.inner_reps`)" if inner else "") + ". "
            "**Median** is the reported time; **IQR** is Q3 − Q1 and **p95** the 95th "
            "percentile, both by linear interpolation over the timed trials; error bars in "
            "the plots are Q1 and Q3. **CPU median** is the median process CPU time (user + "
            "system, all threads) per trial: CPU/wall ≈ number of busy threads.")
        self.par(
            "**Memory.** *Peak RSS* is the peak resident set of a fresh process that ran "
            "only this scenario (binary, libraries, model, workspace; shown in MB = 10⁶ "
            "bytes): rosetta reads `VmHWM` from `/proc/self/status` (`ru_maxrss` would carry "
            "the spawning parent's peak over `exec`); PyTorch's figure is described in its "
            "notes above. *Alloc bytes/iter* (and calls) count the global `operator new` per "
            "timed iteration, averaged over the trials: 0 means the steady state does not "
            "allocate through `new` (BLAS libraries allocate with `malloc`, which is not "
            "counted here; `test_alloc` checks `malloc` too). The split of the resident set "
            "into the scenario's anonymous memory and file-backed pages (binary, shared "
            "libraries), and the peak of a one-policy minimal program, follow the memory "
            "table in section 2. "
            + md_text(md.get("gc_note") or "C++ has no garbage collector") + ".")
        self.par(
            "**FLOPs.** `flops` counts 2·m·n·k for every matrix product the scenario "
            "actually executes, measured by one extra untimed iteration over a counting gemm "
            "table: mixture-of-experts products count only the routed tokens, attention the "
            "full S×S products it computes; elementwise work (softmax, RMSNorm, SwiGLU, AdamW) "
            "is not counted, so GFLOPS is a lower bound on work done. The PyTorch baseline "
            "counts the same products analytically. "
            + (f"This run: {md_text(md['flop_counting'])}." if md.get("flop_counting") else ""))
        self.par(
            "**Peak.** " + (
                f"The single-core FP32 peak measured in the same run is "
                f"**{sig(num(peak.get('fma_gflops')))} GFLOPS** (FMA-throughput probe); a large "
                f"single-threaded sgemm (n = {fmt_int(peak.get('sgemm_n'))}) reaches "
                f"{sig(num(peak.get('sgemm_gflops')))} GFLOPS"
                + (f" (method: {md_text(peak['method'])})" if peak.get("method") else "") + ". "
                if peak else "The run recorded no peak (`metadata.peak`). ")
            + "*% of peak* = GFLOPS / (FMA peak × min(threads, cores)), as `derived.peak_fraction` in the "
            "file (recomputed only where the file has no value).")
        self.par(
            "**Ratios.** Every ratio between rosetta configurations (backend, layout, scalar, "
            "dispatch, threads, cold/warm) compares scenarios of the same `cpp.json`, i.e. one "
            "binary, one machine, one session. Ratios to PyTorch compare two files "
            "(PyTorch median / rosetta median, > 1 means rosetta is faster); the rows above "
            "show whether both were measured on the same machine.")

    # -- 2. reference tables
    def reference_tables(self):
        cpp, torch = self.cpp, self.torch
        have_torch = torch is not None and torch.loaded
        have_2t = have_torch and any(r.id.endswith(TORCH_2T) for r in torch.runs)
        self.par("## 2. Reference scenarios",
                 "",
                 "The 22 reference scenarios at the default policy "
                 + (code(cpp.default_policy) if cpp.default_policy else "(unknown)")
                 + ", grouped by axis. GFLOPS = flops / median; tokens/s = tokens per iteration "
                 "/ median; NaN/Inf of the last trial's output."
                 + (" PyTorch: eager, same ids; ×PyTorch = PyTorch median / rosetta median "
                    "(> 1: rosetta faster); 2T = PyTorch with 2 threads (`@torch_threads=2`)."
                    if have_torch else ""))
        if not have_torch:
            self.par("*No PyTorch comparison: "
                     + (f"{md_text(torch.error)}." if torch is not None and torch.error
                        else "no `--pytorch` file given.") + "*")
        axes = list(AXES)
        for r in cpp.runs:
            if r.base_id in REFERENCE_IDS and "@" not in r.id and r.axis not in axes:
                axes.append(r.axis)
        for axis in axes:
            ids = [i for i in REFERENCE_IDS if (cpp.by_id[i].axis if i in cpp.by_id
                                                else default_axis(i)) == axis]
            if not ids:
                continue
            self.par(f"### {AXIS_TEXT.get(axis, axis)}")
            headers = ["id", "params", "median", "IQR", "p95", "CPU median", "GFLOPS",
                       "% peak", "tokens/s", "peak RSS (MB)", "alloc B/iter (calls)", "NaN/Inf"]
            align = "ll" + "r" * 10
            if axis == "parallel":
                headers.append("speed-up (eff.)")
            if axis == "dispatch":
                headers.append("cold/warm")
            if have_torch:
                headers += ["PyTorch", "×PyTorch"]
            if have_2t:
                headers += ["PyTorch 2T", "×PyTorch 2T"]
            rows = []
            for sid in ids:
                r = cpp.by_id.get(sid)
                row = [code(sid)]
                if r is None:
                    row += ["*missing*"] + [DASH] * (len(headers) - 2)
                    rows.append(row)
                    continue
                row += [fmt_params(r.params),
                        "failed" if r.error else fmt_time(r.median),
                        fmt_time(r.iqr), fmt_time(r.p95), fmt_time(r.cpu_median),
                        sig(r.gflops), fmt_pct(r.peak_frac), sig(r.tok_s), fmt_mb(r.rss),
                        fmt_alloc(r), fmt_nan(r)]
                if axis == "parallel":
                    eff = r.speedup / r.threads if r.speedup and r.threads else None
                    row.append(f"{fmt_ratio(r.speedup)} ({fmt_pct(eff)})" if r.speedup else DASH)
                if axis == "dispatch":
                    row.append(fmt_ratio(r.cold_warm))
                if have_torch:
                    t = torch.get(sid)
                    row += [fmt_time(t.median) if t else DASH,
                            fmt_ratio(t.median / r.median) if t and r.usable else DASH]
                if have_2t:
                    t = torch.get(sid + TORCH_2T)
                    row += [fmt_time(t.median) if t else DASH,
                            fmt_ratio(t.median / r.median) if t and r.usable else DASH]
                rows.append(row)
            self.add(*table(headers, rows, align + "r" * (len(headers) - len(align))))
            self.add("")
            if axis == "memory":
                self.rss_breakdown()

    def rss_breakdown(self):
        """Peak RSS of every reference scenario with its anonymous / file-backed split and
        baseline, then the one-policy minimal program (metadata.minimal_program_rss)."""
        cpp = self.cpp
        self.par("#### Resident set: the scenario's own memory vs the program image",
                 "",
                 "*Peak RSS* is `VmHWM` of the scenario's child process, as in the tables. "
                 "*anon* (`RssAnon`) and *file* (`RssFile`) split the resident set sampled at "
                 "the end of the scenario, after its last timed trial with its model, workspace "
                 "and buffers still alive (`dispatch_cold`, whose trials each free their model: "
                 "after one more, untimed, build and forward): *anon* is the scenario's own "
                 "memory (parameters, workspace, gradients and optimizer state, heap, thread "
                 "stacks), *file* the pages of the executable and the shared libraries "
                 "(libstdc++, libc, libm, BLAS) that were touched. *baseline* is `VmRSS` at "
                 "the start of the child, before the scenario built anything. All in MB (10⁶ "
                 f"bytes); {NA}: not recorded in this file.")
        rows = []
        for sid in REFERENCE_IDS:
            r = cpp.by_id.get(sid)
            if r is None:
                rows.append([code(sid), "*missing*"] + [DASH] * 4)
                continue
            if r.error:
                rows.append([code(sid), fmt_params(r.params), "failed"] + [DASH] * 3)
                continue
            rows.append([code(sid), fmt_params(r.params), fmt_mb(r.rss, NA),
                         fmt_mb(r.rss_anon, NA), fmt_mb(r.rss_file, NA), fmt_mb(r.rss_base, NA)])
        self.add(*table(["id", "params", "peak RSS (MB)", "anon (MB)", "file (MB)",
                         "baseline (MB)"], rows, "llrrrr"))
        self.add("")

        mp = cpp.metadata.get("minimal_program_rss")
        note = cpp.metadata.get("minimal_program_rss_note")
        probes = {m: mp.get(m) for m, _ in PROBE_MODES} if isinstance(mp, dict) else {}
        ok = {m: p for m, p in probes.items()
              if isinstance(p, dict) and not p.get("error") and num(p.get("peak_rss_bytes"))}
        if not ok:
            why = (md_text(note.split(";")[0]) if mp is None and isinstance(note, str)
                   else "; ".join(f"{m}: {md_text(p['error'])}" for m, p in probes.items()
                                  if isinstance(p, dict) and p.get("error"))
                   or "`metadata.minimal_program_rss` is not in this file")
            self.par(f"Minimal program (`rosetta-rss-probe`): {NA} — {why}.")
            return
        policies = sorted({str(p.get("policy")) for p in ok.values() if p.get("policy")})
        binary = next((num(p.get("binary_bytes")) for p in ok.values()
                       if num(p.get("binary_bytes"))), None)
        self.par("**Minimal program.** `rosetta-rss-probe` runs the same work as a reference "
                 "scenario — same seed and token batch — in a program that holds "
                 "one policy only ("
                 + (", ".join(code(p) for p in policies) if policies else "policy " + NA)
                 + f"; binary {fmt_mb(binary, NA)} MB): no scenario table, no virtual twin, no "
                 "other backend, no CLI or formatting library. The rosetta-bench rows repeat the "
                 "table above.")
        rows = []
        for mode, sid in PROBE_MODES:
            p = probes.get(mode)
            r = cpp.by_id.get(sid)
            if r is not None and not r.error:
                rows.append([f"rosetta-bench child, {code(sid)}", fmt_params(r.params),
                             fmt_mb(r.rss, NA), fmt_mb(r.rss_anon, NA), fmt_mb(r.rss_file, NA),
                             fmt_mb(r.rss_base, NA)])
            label = f"`rosetta-rss-probe {mode}`"
            if not isinstance(p, dict) or p.get("error") or mode not in ok:
                err = md_text(p["error"]) if isinstance(p, dict) and p.get("error") else NA
                rows.append([label, DASH, err, NA, NA, NA])
                continue
            params = fmt_params({k: p.get(k) for k in ("preset", "batch", "seq")})
            its = num(p.get("iterations"))
            rows.append([label, params + (f", {its:g} iterations" if its else ""),
                         fmt_mb(p.get("peak_rss_bytes"), NA), fmt_mb(p.get("rss_anon_bytes"), NA),
                         fmt_mb(p.get("rss_file_bytes"), NA),
                         fmt_mb(p.get("baseline_rss_bytes"), NA)])
        self.add(*table(["program", "params", "peak RSS (MB)", "anon (MB)", "file (MB)",
                         "baseline (MB)"], rows, "llrrrr"))
        self.add("")
        bits = []
        for mode, sid in PROBE_MODES:
            p, r = ok.get(mode), cpp.get(sid)
            if not p or not r or r.rss is None:
                continue
            d_peak = r.rss - num(p["peak_rss_bytes"])
            pa, pf = num(p.get("rss_anon_bytes")), num(p.get("rss_file_bytes"))
            txt = (f"{code(sid)} peaks at {fmt_mb(r.rss)} MB in rosetta-bench and "
                   f"{fmt_mb(p['peak_rss_bytes'])} MB in the probe ({fmt_mb(abs(d_peak))} MB "
                   f"{'less' if d_peak >= 0 else 'more'})")
            if None not in (pa, pf, r.rss_anon, r.rss_file):
                txt += (f"; file-backed {fmt_mb(r.rss_file)} vs {fmt_mb(pf)} MB, anonymous "
                        f"{fmt_mb(r.rss_anon)} vs {fmt_mb(pa)} MB")
            bits.append(txt)
        if bits:
            self.par("Same work, two programs: " + "; ".join(bits) + ". The difference is the "
                     "program image, not the model: *file* counts the resident pages of the "
                     "executable and the shared libraries it maps (rosetta-bench's binary "
                     "carries the code of every scenario, policy and backend), while *anon* "
                     "— parameters, workspace, optimizer state — is the scenario's own memory "
                     "and nearly the same in both. Both are reported as measured: the tables "
                     "above are what a rosetta-bench child holds, the probe what a program "
                     "that runs one policy of the library needs.")
        tiny = [r for r in (cpp.get(i) for i in REFERENCE_IDS)  # one model, one thread
                if r and r.params.get("preset") == "tiny" and r.rss is not None
                and (r.threads or 1) == 1]
        if tiny and ok:
            under = [r for r in tiny if r.rss <= RSS_TARGET_TINY]
            probe_txt = ", ".join(f"{m} {fmt_mb(p['peak_rss_bytes'])} MB" for m, p in ok.items())
            lo, hi = min(r.rss for r in tiny), max(r.rss for r in tiny)
            self.par(f"Against the goal of ≤ {RSS_TARGET_TINY / 1e6:g} MB peak RSS for tiny "
                     f"scenarios (issue #6): {len(under)} of {len(tiny)} single-threaded "
                     "tiny-preset scenarios meet it as rosetta-bench children (peak "
                     f"{fmt_mb(lo)}–{fmt_mb(hi)} MB); the minimal program: {probe_txt}.")

    # -- 3. C++ axes
    def cpp_axes(self):
        cpp = self.cpp
        self.par("## 3. C++ axes: backend × layout × scalar × dispatch",
                 "",
                 "From the `cpp_grid` scenarios (`<base_id>@<scalar>/<layout>/<backend>/"
                 "<dispatch>`, the policy read from each scenario's `policy`). *×fastest* is "
                 "the median over the fastest median of the same scenario. *static* calls the "
                 "backend through the policy's template parameter; *virtual* through the "
                 "run-time gemm table (`backend::Dynamic`).")
        grid = grid_by_base(cpp)
        if not grid:
            self.par("*No `cpp_grid` scenarios in this file.*")
        compact = []
        for base, runs in grid.items():
            vary = [d for d in DIMS if len({r.policy.get(d) for r in runs}) > 1]
            if len(vary) <= 1:
                compact.append((base, runs))
                continue
            self.par(f"### {code(base)}: {len(runs)} policies")
            values = {d: sorted({r.policy.get(d) for r in runs}, key=lambda v: sort_key(d, v))
                      for d in DIMS}
            lookup = {}
            for r in runs:
                lookup.setdefault(tuple(r.policy.get(d) for d in DIMS), r)
            best = min((r.median for r in runs if r.usable), default=None)
            rows = []
            for combo in cross(values):
                r = lookup.get(combo)
                row = [str(v or DASH) for v in combo]
                if r is None:
                    rows.append(row + ["*not run*"] + [DASH] * 5)
                    continue
                ratio = r.median / best if r.usable and best else None
                rtxt = fmt_ratio(ratio)
                if ratio is not None and r.median == best:
                    rtxt = f"**{rtxt}**"
                rows.append(row + ["failed" if r.error else fmt_time(r.median),
                                   fmt_time(r.iqr), rtxt, sig(r.gflops), fmt_alloc(r),
                                   fmt_nan(r)])
            self.add(*table(["backend", "layout", "scalar", "dispatch", "median", "IQR",
                             "×fastest", "GFLOPS", "alloc B/iter (calls)", "NaN/Inf"], rows,
                            "llllrrrrrr"))
            self.add("")
        if compact:
            backends = sorted({r.policy.get("backend") for _, runs in compact for r in runs},
                              key=lambda v: sort_key("backend", v))
            self.par("### Per-backend runs",
                     "",
                     "Scenarios where only one policy dimension varies (per-backend copies of "
                     "the scaling scenarios); each cell: median (×fastest backend of that row).")
            rows = []
            for base, runs in compact:
                fixed = [d for d in DIMS if len({r.policy.get(d) for r in runs}) == 1]
                best = min((r.median for r in runs if r.usable), default=None)
                row = [code(base), policy_name(runs[0].policy, fixed)]
                for b in backends:
                    r = next((r for r in runs if r.policy.get("backend") == b), None)
                    if r is None:
                        row.append(DASH)
                    elif not r.usable:
                        row.append("failed" if r.error else DASH)
                    else:
                        row.append(f"{fmt_time(r.median)} ({fmt_ratio(r.median / best)})")
                rows.append(row)
            self.add(*table(["scenario", "fixed policy"] + [str(b) for b in backends], rows,
                            "ll" + "r" * len(backends)))
            self.add("")
        self.static_virtual_table(grid)
        self.kernel_tables()
        self.auto_table()

    def auto_table(self):
        """backend::Auto (measured routing) against the fastest fixed backend of the same run."""
        cpp = self.cpp
        autos = [r for r in cpp.runs if r.policy.get("backend") == "auto"]
        self.par("### Auto vs the best fixed backend (`cpp_auto`)", "",
                 "`backend::Auto` routes every gemm to the backend a calibration measured "
                 "fastest for its shape (`rosetta-calibrate`; docs/decisions.md). *best fixed*: "
                 "the fastest median among the fixed backends with the same scalar, layout and "
                 "dispatch in this run (separate processes, seconds apart); *auto/best* < 1: the "
                 "routed model is faster; *noise*: the larger IQR/median of the two. *paired*: "
                 "measured in the Auto scenario's own process after its timed loop — one model "
                 "per backend (naive left out), each round times one iteration of each in "
                 "rotating order — the median [quartiles] of the per-round ratio auto/fixed "
                 "against the backend with the lowest paired median; this is the comparison to "
                 "trust on a noisy machine.")
        if not autos:
            self.par("*No `auto` scenarios in this file.*")
            return
        rows = []
        same = ("scalar", "layout", "dispatch")
        for a in sorted(autos, key=lambda r: (REFERENCE_IDS.index(r.base_id)
                                              if r.base_id in REFERENCE_IDS else 99,
                                              policy_key(r.policy))):
            fixed = [r for r in cpp.runs if r.base_id == a.base_id and "@" in r.id and r.usable
                     and r.policy.get("backend") not in (None, "none", "auto")
                     and all(r.policy.get(d) == a.policy.get(d) for d in same)]
            best = min(fixed, key=lambda r: r.median, default=None)
            ok = a.usable and best is not None
            noise = (max((x.iqr or 0) / x.median for x in (a, best)) if ok else None)
            paired = a.raw.get("paired") if isinstance(a.raw.get("paired"), dict) else None
            pb = paired.get("best") if paired else None
            if pb and isinstance(paired.get("against", {}).get(pb), dict):
                pr = paired["against"][pb]
                ptxt = (f"{pb}: {fmt_ratio(pr['ratio_median'], 3)} "
                        f"[{fmt_ratio(pr['ratio_q1'], 3)}–{fmt_ratio(pr['ratio_q3'], 3)}], "
                        f"{paired.get('rounds')} rounds")
            else:
                ptxt = DASH
            rows.append([code(a.base_id), policy_name(a.policy, same),
                         "failed" if a.error else fmt_time(a.median),
                         best.policy.get("backend") if best else DASH,
                         fmt_time(best.median) if best else DASH,
                         fmt_ratio(a.median / best.median, 3) if ok else DASH,
                         fmt_pct(noise) if noise is not None else DASH, ptxt])
        self.add(*table(["scenario", "policy", "auto", "best fixed", "its median", "auto/best",
                         "noise", "paired auto/best"], rows, "llrlrrrl"))
        self.add("")
        t = cpp.metadata.get("auto_table")
        if isinstance(t, dict) and t.get("source"):
            self.par(f"Routing table: {md_text(str(t['source']))} (fingerprint "
                     f"{code(str(t.get('fingerprint')))}, {t.get('gemm_routes')} gemm routes, "
                     f"fallback {t.get('fallback')}, {t.get('substituted')} substituted).")

    def static_virtual_table(self, grid):
        pairs = static_virtual_pairs(grid)
        self.par("### Static vs virtual dispatch")
        if not pairs:
            self.par("*No scenario was run with both `static` and `virtual` dispatch.*")
            return
        rows = []
        for (base, backend, layout, scalar), s, v in pairs:
            ratio = v.median / s.median if s and v and s.usable and v.usable else None
            rows.append([code(base), backend or DASH, layout or DASH, scalar or DASH,
                         fmt_time(s.median) if s else DASH, fmt_time(v.median) if v else DASH,
                         fmt_ratio(ratio, 3)])
        self.add(*table(["scenario", "backend", "layout", "scalar", "static", "virtual",
                         "virtual/static"], rows, "llllrrr"))
        self.add("")
        s = summary([v.median / s.median for _, s, v in pairs
                     if s and v and s.usable and v.usable])
        if s:
            self.par(f"virtual/static: median {fmt_summary(s, 'policies')}.")

    def kernel_tables(self):
        runs = self.cpp.axis_runs("cpp_kernels")
        self.par("### Kernels per backend, layout and scalar (`cpp_kernels`)")
        if not runs:
            self.par("*No `cpp_kernels` scenarios in this file.*")
            return
        kernels = sorted({r.base_id for r in runs},
                         key=lambda k: (REFERENCE_IDS.index(k) if k in REFERENCE_IDS else 99, k))
        with_backend = [k for k in kernels if any(
            r.policy.get("backend") not in (None, "none") for r in runs if r.base_id == k)]
        without = [k for k in kernels if k not in with_backend]
        for group, title in ((with_backend, "Kernels run per backend"),
                             (without, "Kernels that use no backend (`backend` = `none`)")):
            if not group:
                continue
            gruns = [r for r in runs if r.base_id in group]
            dims = [d for d in DIMS if len({r.policy.get(d) for r in gruns}) > 1]
            if group is with_backend and "backend" not in dims:
                dims.insert(0, "backend")
            values = {d: sorted({r.policy.get(d) for r in gruns}, key=lambda v: sort_key(d, v))
                      for d in dims}
            best = {k: min((r.median for r in gruns if r.base_id == k and r.usable), default=None)
                    for k in group}
            has_flops = {k: any(r.gflops for r in gruns if r.base_id == k) for k in group}
            headers = list(dims)
            for k in group:
                short = k.replace("kernel_", "")
                headers += [f"{short} median", f"{short} ×fastest"]
                if has_flops[k]:
                    headers.append(f"{short} GFLOPS")
            rows = []
            for combo in cross(values):
                row = [str(v or DASH) for v in combo]
                for k in group:
                    r = next((r for r in gruns if r.base_id == k and all(
                        r.policy.get(d) == v for d, v in zip(dims, combo))), None)
                    ok = r is not None and r.usable
                    row += ["failed" if r is not None and r.error else
                            (fmt_time(r.median) if ok else DASH),
                            fmt_ratio(r.median / best[k]) if ok and best[k] else DASH]
                    if has_flops[k]:
                        row.append(sig(r.gflops) if ok else DASH)
                rows.append(row)
            self.par(f"{title}:")
            self.add(*table(headers, rows, "l" * len(dims) + "r" * (len(headers) - len(dims))))
            self.add("")

    # -- 4. findings
    def findings(self):
        cpp, torch = self.cpp, self.torch
        self.par("## 4. Findings", "",
                 "Computed from the data above (medians; ranges are min–max over the matched "
                 "pairs).")
        out = []
        grid = grid_by_base(cpp)
        # fastest backend per scenario (scenarios where only the backend varies: one line)
        wins, ratios, compact = {}, {}, 0
        for base, runs in list(grid.items()) + list(kernel_groups(cpp).items()):
            ranked = backend_ranking(runs)
            if len(ranked) < 2:
                continue
            (b0, r0) = ranked[0]
            if len([d for d in DIMS if len({r.policy.get(d) for r in runs}) > 1]) <= 1:
                compact += 1
                wins[b0] = wins.get(b0, 0) + 1
                for b, r in ranked:
                    ratios.setdefault(b, []).append(r.median / r0.median)
                continue
            others = ", ".join(f"{b} {fmt_ratio(r.median / r0.median)}" for b, r in ranked[1:])
            out.append(f"{code(base)}: fastest backend **{b0}** ({policy_name(r0.policy)}, "
                       f"{fmt_time(r0.median)}); each other backend's best: {others}.")
        if compact:
            order = sorted(ratios, key=lambda b: statistics.median(ratios[b]))
            out.append(f"Per-backend runs ({compact} scenarios, one policy otherwise): fastest "
                       "backend " + ", ".join(f"**{b}** in {n}" for b, n in sorted(
                           wins.items(), key=lambda kv: -kv[1]))
                       + "; median time over the fastest backend: "
                       + ", ".join(f"{b} {statistics.median(ratios[b]):.2f}×" for b in order)
                       + ".")
        # layout, scalar, dispatch
        grid_runs = [r for runs in grid.values() for r in runs]
        kern_runs = cpp.axis_runs("cpp_kernels")
        for dim, a, b, text in (("layout", "row", "col", "Column-major vs row-major (col/row)"),
                                ("scalar", "float", "double", "double vs float (double/float)"),
                                ("dispatch", "static", "virtual",
                                 "Virtual vs static dispatch (virtual/static)")):
            parts = []
            for label, runs in (("model scenarios", grid_runs), ("kernels", kern_runs)):
                ratios = pair_ratios(runs, dim, a, b)
                s = summary([r for _, r in ratios])
                if not s:
                    continue
                txt = f"{label}: {fmt_summary(s, 'pairs')}"
                by_b = {}
                for key, r in ratios:
                    by_b.setdefault(key.get("backend"), []).append(r)
                if len(by_b) > 1:
                    txt += " — per backend " + ", ".join(
                        f"{bk or DASH} {statistics.median(v):.2f}×"
                        for bk, v in sorted(by_b.items(),
                                            key=lambda kv: sort_key("backend", kv[0])))
                parts.append(txt)
            if parts:
                out.append(f"{text}: " + "; ".join(parts) + ".")
        # parallel
        for kind, ids in PARALLEL.items():
            pts = [cpp.get(i) for i in ids]
            bits = []
            for r in pts[1:]:
                if r and r.speedup and r.threads:
                    bits.append(f"T{int(r.threads)} {fmt_ratio(r.speedup)} "
                                f"(efficiency {fmt_pct(r.speedup / r.threads)})")
            if bits:
                txt = f"Parallel {kind} throughput speed-up over T1: " + ", ".join(bits)
                cores = cpp.cores
                fma1 = num(dig(cpp.metadata, "peak", "fma_gflops"))
                fma_all = num(dig(cpp.metadata, "peak", "fma_gflops_all_cores"))
                if fma1 and fma_all and cores:
                    txt += (f" (the FMA probe on all {int(cores)} cores at once: "
                            f"{fmt_ratio(fma_all / fma1)} one core)")
                over = [int(r.threads) for r in pts
                        if r and r.threads and cores and r.threads > cores]
                if over:
                    txt += (f"; the machine has {int(cores)} logical cores, so "
                            + ", ".join(f"T{t}" for t in over) + " oversubscribes them")
                out.append(txt + ".")
        # cold / warm
        cold, warm = cpp.get("dispatch_cold"), cpp.get("dispatch_warm")
        if cold and cold.cold_warm:
            txt = (f"Cold start: `dispatch_cold` takes {fmt_time(cold.median)}, "
                   f"{fmt_ratio(cold.cold_warm)} the warm forward pass")
            if warm:
                txt += f" ({fmt_time(warm.median)})"
                if fmt_params(cold.params) != fmt_params(warm.params):
                    txt += (f"; note the shapes differ: cold {fmt_params(cold.params)}, warm "
                            f"{fmt_params(warm.params)}")
            out.append(txt + ".")
        # scaling
        for fam, (param, ids) in FAMILIES.items():
            txt = scaling_text(cpp, fam, param, ids)
            if txt:
                out.append(txt)
        # peak
        big = [cpp.get(i) for i in ("scale_forward_256", "scale_train_256", "mem_scale_batch_8",
                                    "mem_scale_seq_64", "mem_train_step")]
        bits = [f"{code(r.id)} {sig(r.gflops)} GFLOPS = {fmt_pct(r.peak_frac)}"
                for r in big if r and r.gflops]
        if bits:
            top = max((r for r in cpp.runs if r.usable and r.peak_frac),
                      key=lambda r: r.peak_frac, default=None)
            txt = ((f"Achieved fraction of the measured FMA peak ({sig(cpp.peak)} GFLOPS per "
                    "core): " if cpp.peak else "Achieved fraction of peak (as recorded in "
                    "`derived.peak_fraction`; the file has no `metadata.peak`): ")
                   + "; ".join(bits))
            if top:
                txt += f"; highest of all scenarios: {code(top.id)} {fmt_pct(top.peak_frac)}"
            sg = num(dig(cpp.metadata, "peak", "sgemm_gflops"))
            if sg and cpp.peak:
                txt += f" (a large single-threaded sgemm reaches {fmt_pct(sg / cpp.peak)})"
            out.append(txt + ".")
        # allocations and memory
        ref = [cpp.by_id[i] for i in REFERENCE_IDS if i in cpp.by_id and cpp.by_id[i].usable]
        with_alloc = [r for r in ref if r.alloc_b is not None]
        if with_alloc:
            zero = [r for r in with_alloc if r.alloc_b == 0]
            nonzero = sorted((r for r in with_alloc if r.alloc_b), key=lambda r: -r.alloc_b)
            txt = (f"Steady-state heap use: {len(zero)} of {len(with_alloc)} reference scenarios "
                   "allocate 0 bytes per timed iteration")
            if nonzero:
                txt += "; the others: " + ", ".join(
                    f"{code(r.id)} {fmt_int(r.alloc_b)} B ({fmt_int(r.alloc_n)} calls)"
                    for r in nonzero[:6])
            g = [r for r in grid_runs + kern_runs if r.usable and r.alloc_b is not None]
            if g:
                gz = sum(1 for r in g if r.alloc_b == 0)
                txt += f"; grid and kernel runs: {gz} of {len(g)} allocation-free"
            out.append(txt + ".")
        rss = [(r.rss, r.id) for r in ref if r.rss]
        if rss:
            lo, hi = min(rss), max(rss)
            out.append(f"Peak RSS of the reference scenarios: {fmt_mb(lo[0])} MB "
                       f"({code(lo[1])}) to {fmt_mb(hi[0])} MB ({code(hi[1])}).")
        nonfinite = [r for r in cpp.runs if (r.nan or 0) or (r.inf or 0)]
        counted = [r for r in cpp.runs if r.nan is not None and r.inf is not None]
        if counted:
            if nonfinite:
                out.append(f"Numerics: {len(nonfinite)} scenario(s) report NaN/Inf: "
                           + ", ".join(code(r.id) for r in nonfinite[:10]) + ".")
            else:
                out.append(f"Numerics: every one of the {len(counted)} scenarios with a "
                           "`numerical` record reports 0 NaN and 0 Inf.")
        # pytorch
        if torch is not None and torch.loaded:
            out.extend(torch_findings(cpp, torch))
        elif torch is not None:
            out.append("No PyTorch comparison (" + md_text(torch.error or "file not loaded") + ").")
        else:
            out.append("No PyTorch comparison (no `--pytorch` file).")
        if not out:
            out.append("Not enough data for any finding.")
        for o in out:
            self.add(f"- {o}")
        self.add("")

    # -- 5. plots
    def plots(self, rel_img):
        self.par("## 5. Plots")
        if self.plot_note:
            self.par(f"*No plots: {self.plot_note}.*")
            return
        if not self.images:
            self.par("*No plot had enough data.*")
            return
        for name, alt, caption in self.images:
            self.par(f"![{alt}]({rel_img}/{name})", "", f"*{caption}*")

    # -- 6. code metrics
    def code_metrics(self, root):
        self.par("## 6. Static code metrics", "",
                 f"C++ sources (`{'`, `'.join(report_code.CPP_EXTENSIONS)}`) under "
                 f"{code(shown_root(root))}. *SLOC*: lines with something other than "
                 "whitespace after comments are removed (a small comment-aware scanner that "
                 "knows string, raw-string and character literals and digit separators); "
                 "*comment*: comment-only lines. *gzip*: Python's `gzip` (level 9) of all files "
                 "concatenated in path order, a rough measure of information content. *other "
                 "files*: non-C++ files present but not counted (CMake, Python, shell, …).")
        rows = []
        for sub in ("include/rosetta", "examples", "benchmark", "test"):
            m = report_code.directory_metrics(os.path.join(root, sub))
            if m is None:
                rows.append([code(sub + "/"), "*absent*"] + [DASH] * 8)
                continue
            ratio = m["gzip_bytes"] / m["bytes"] if m["bytes"] else None
            rows.append([code(sub + "/"), fmt_int(m["files"]), fmt_int(m["lines"]),
                         fmt_int(m["sloc"]), fmt_int(m["comment"]), fmt_int(m["bytes"]),
                         fmt_int(m["gzip_bytes"]), fmt_pct(ratio), fmt_int(m["functions"]),
                         fmt_int(m["other_files"])])
        self.add(*table(["directory", "files", "lines", "SLOC", "comment", "bytes", "gzip bytes",
                         "gzip/bytes", "functions", "other files"], rows))
        self.add("")
        self.par("*Function count heuristic.* " + report_code.FUNCTION_HEURISTIC)


def shown_root(root):
    """The source root as shown on the page: relative to the working directory if inside it."""
    rel = os.path.relpath(os.path.abspath(root))
    return os.path.abspath(root) if rel.startswith("..") else rel


def fmt_params(p):
    if not p:
        return DASH
    parts = []
    if p.get("preset"):
        parts.append(str(p["preset"]))
    for key, short in (("batch", "b"), ("seq", "s"), ("seq_len", "s"), ("hidden", "h"),
                       ("hidden_dim", "h"), ("threads", "T"), ("thread_count", "T")):
        v = num(p.get(key))
        if v is not None and not (key in ("threads", "thread_count") and "n" in p and v == 1):
            parts.append(f"{short}{v:g}")
    if isinstance(p.get("shape"), list) and p["shape"]:
        parts.append("×".join(str(x) for x in p["shape"]))
    elif num(p.get("n")) is not None:
        parts.append(f"n={num(p['n']):g}")
    return " ".join(parts) or DASH


def fmt_alloc(r):
    if r.alloc_b is None:
        return DASH
    return fmt_int(r.alloc_b) + (f" ({fmt_int(r.alloc_n)})" if r.alloc_n is not None else "")


def fmt_nan(r):
    if r.nan is None and r.inf is None:
        return DASH
    return f"{fmt_int(r.nan)}/{fmt_int(r.inf)}"


def cross(values):
    """Cartesian product of values[d] over the dims of the dict, in its order."""
    combos = [()]
    for d in values:
        combos = [c + (v,) for c in combos for v in values[d]]
    return combos


def grid_by_base(bench):
    out = {}
    runs = [r for r in bench.runs if r.axis == "cpp_grid"]
    for r in sorted(runs, key=lambda r: (REFERENCE_IDS.index(r.base_id)
                                         if r.base_id in REFERENCE_IDS else 99, r.base_id)):
        out.setdefault(r.base_id, []).append(r)
    for base in out:
        out[base].sort(key=lambda r: policy_key(r.policy))
    return out


def backend_ranking(runs):
    """[(backend, its fastest run)] sorted by median; backend 'none' left out."""
    best = {}
    for r in runs:
        b = r.policy.get("backend")
        if r.usable and b not in (None, "none") and (b not in best or r.median < best[b].median):
            best[b] = r
    return sorted(best.items(), key=lambda kv: kv[1].median)


def kernel_groups(bench):
    out = {}
    for r in bench.axis_runs("cpp_kernels"):
        out.setdefault(r.base_id, []).append(r)
    return out


def static_virtual_pairs(grid):
    pairs = []
    for base, runs in grid.items():
        slots = {}
        for r in runs:
            key = (base, r.policy.get("backend"), r.policy.get("layout"), r.policy.get("scalar"))
            slots.setdefault(key, {}).setdefault(r.policy.get("dispatch"), r)
        for key in sorted(slots, key=lambda k: (k[0], sort_key("backend", k[1]),
                                                sort_key("layout", k[2]),
                                                sort_key("scalar", k[3]))):
            s, v = slots[key].get("static"), slots[key].get("virtual")
            if s or v:
                if s and v:
                    pairs.append((key, s, v))
    return pairs


def pair_ratios(runs, dim, a, b):
    """[(other policy dims + base, median(b)/median(a))] over runs equal in everything but dim."""
    slots = {}
    for r in runs:
        if not r.usable or r.policy.get(dim) not in (a, b):
            continue
        key = (r.base_id,) + tuple(r.policy.get(d) for d in DIMS if d != dim)
        slots.setdefault(key, {}).setdefault(r.policy.get(dim), r)
    out = []
    for key, s in slots.items():
        if a in s and b in s:
            other = dict(zip(("base",) + tuple(d for d in DIMS if d != dim), key))
            out.append((other, s[b].median / s[a].median))
    return out


def fit(xs, ys):
    """Least-squares (intercept, slope) or None."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - slope * mx, slope


def family_points(runs, param):
    pts = []
    for r in runs:
        if r is None or not r.usable:
            continue
        x = r.x(param)
        tokens = r.tokens or ((num(r.params.get("batch")) or 0) * (num(r.params.get("seq")) or 0))
        if x is not None:
            pts.append((x, r.median, r.q1, r.q3, tokens or None))
    return sorted(pts)


def scaling_text(bench, fam, param, ids):
    pts = [p for p in family_points([bench.get(i) for i in ids], param) if p[4]]
    if len(pts) < 2:
        return None
    tok = [p[4] for p in pts]
    t = [p[1] for p in pts]
    lin = fit(tok, t)
    loglog = fit([math.log(x) for x in tok], [math.log(y) for y in t])
    first, last = pts[0], pts[-1]
    shape = ""
    if loglog:
        k = loglog[1]
        shape = ("≈ linear" if 0.9 <= k <= 1.1 else "super-linear" if k > 1.1 else "sub-linear")
    txt = (f"{'Batch' if fam == 'batch' else 'Sequence'} scaling "
           f"({param} {first[0]:g}→{last[0]:g}, {first[4]:g}→{last[4]:g} tokens): "
           "time per token "
           f"{fmt_time(first[1] / first[4])} → {fmt_time(last[1] / last[4])}")
    if lin:
        txt += (f"; linear fit {fmt_time(lin[1])}/token {'+' if lin[0] >= 0 else '−'} "
                f"{fmt_time(abs(lin[0]))} fixed")
    if loglog:
        txt += f"; log-log slope {loglog[1]:.2f} ({shape})"
    per_backend = {}
    for r in bench.axis_runs("cpp_grid"):
        if r.base_id in ids and r.usable:
            per_backend.setdefault(r.policy.get("backend"), []).append(r)
    slopes = []
    for b, runs in sorted(per_backend.items(), key=lambda kv: sort_key("backend", kv[0])):
        p = [q for q in family_points(runs, param) if q[4]]
        f = fit([q[4] for q in p], [q[1] for q in p]) if len(p) >= 2 else None
        if f and len({q[0] for q in p}) == len(p):
            slopes.append(f"{b} {fmt_time(f[1])}")
    if slopes:
        txt += "; per-token slope per backend: " + ", ".join(slopes)
    return txt + "."


def torch_findings(cpp, torch):
    out = []
    matched = []
    for sid in REFERENCE_IDS:
        r, t = cpp.get(sid), torch.get(sid)
        if r and t:
            matched.append((sid, t.median / r.median))
    if matched:
        s = summary([x for _, x in matched])
        faster = sum(1 for _, x in matched if x > 1)
        lo = min(matched, key=lambda m: m[1])
        hi = max(matched, key=lambda m: m[1])
        txt = (f"PyTorch eager / rosetta: {fmt_summary(s, 'reference scenarios')}; rosetta is "
               f"faster in {faster} of {len(matched)} (largest {fmt_ratio(hi[1])} at "
               f"{code(hi[0])}, smallest {fmt_ratio(lo[1])} at {code(lo[0])})")
        per_axis = {}
        for sid, x in matched:
            per_axis.setdefault(cpp.by_id[sid].axis, []).append(x)
        if len(per_axis) > 1:
            txt += "; median per axis: " + ", ".join(
                f"{a} {statistics.median(v):.2f}×" for a, v in per_axis.items())
        out.append(txt + ".")
    matched2 = []
    for sid in REFERENCE_IDS:
        r, t = cpp.get(sid), torch.get(sid + TORCH_2T)
        if r and t:
            matched2.append(t.median / r.median)
    s2 = summary(matched2)
    if s2:
        out.append(f"Against PyTorch with 2 threads (`{TORCH_2T}`; rosetta single-threaded "
                   f"default): {fmt_summary(s2, 'scenarios')}.")
    tg = [(torch.get(i), cpp.get(i)) for i in ("scale_forward_256", "scale_train_256")]
    bits = [f"{code(t.id)} PyTorch {sig(t.gflops)} vs rosetta {sig(r.gflops)} GFLOPS"
            for t, r in tg if t and r and t.gflops and r.gflops]
    if bits:
        out.append("Achieved GFLOPS on the scale axis: " + "; ".join(bits) + ".")
    return out


# --- plots ------------------------------------------------------------------------------------
def make_plots(page, img_dir, fmt):
    try:
        import report_plots
        report_plots.load()
    except ImportError as e:
        print(f"report: matplotlib is not importable by {sys.executable} ({e})", file=sys.stderr)
        return "matplotlib is not installed for the Python that ran this script"
    cpp, torch = page.cpp, page.torch
    have_torch = torch is not None and torch.loaded
    os.makedirs(img_dir, exist_ok=True)
    dp = parse_policy_text(cpp.default_policy)
    jobs = []

    for fam, (param, ids) in FAMILIES.items():
        series = []
        groups = {}
        for r in cpp.axis_runs("cpp_grid"):
            if r.base_id in ids and r.usable and all(
                    r.policy.get(d) == dp.get(d)
                    for d in ("scalar", "layout", "dispatch") if d in dp):
                groups.setdefault(r.policy.get("backend"), []).append(r)
        for b in sorted(groups, key=lambda v: sort_key("backend", v)):
            pts = family_points(groups[b], param)
            if len(pts) >= 2:
                series.append({"label": f"rosetta {b}", "points": pts})
        if not series:
            pts = family_points([cpp.get(i) for i in ids], param)
            if pts:
                series.append({"label": f"rosetta {cpp.default_policy or ''}".strip(),
                               "points": pts})
        if have_torch:
            for suffix, label in (("", "PyTorch eager"), (TORCH_2T, "PyTorch eager, 2 threads")):
                pts = family_points([torch.get(i + suffix) for i in ids], param)
                if pts:
                    series.append({"label": label, "style": "--", "points": pts})
        if series:
            name = f"scaling_{fam}.{fmt}"
            what = "batch size (seq 32)" if fam == "batch" else "sequence length (batch 2)"
            jobs.append((name, f"{fam} scaling", f"Median time vs {what} (left) and per token "
                         "(right); error bars Q1–Q3; log-log axes on the left.",
                         report_plots.plot_scaling,
                         (f"{'batch' if fam == 'batch' else 'sequence'} scaling (forward)",
                          param, series)))

    pseries = []
    for bench, prefix, style in ((cpp, "rosetta", "-"),
                                 (torch if have_torch else None, "PyTorch", "--")):
        if bench is None:
            continue
        for kind, ids in PARALLEL.items():
            t1 = bench.get(ids[0])
            pts = []
            for sid in ids:
                r = bench.get(sid)
                if not r or not r.speedup:
                    continue
                n = r.threads or r.x("threads")
                lo = hi = None
                if t1 and n and r.q1 and r.q3:
                    lo, hi = n * t1.median / r.q3, n * t1.median / r.q1
                pts.append((n, r.speedup, lo, hi))
            if len(pts) >= 2:
                pseries.append({"label": f"{prefix} {kind}", "style": style, "points": pts})
    if pseries:
        jobs.append((f"parallel_speedup.{fmt}", "parallel speed-up",
                     "Throughput speed-up T·median(T1)/median(T) for the forward pass and the "
                     "training step, with the ideal line; error bars from the quartiles of T.",
                     report_plots.plot_parallel, (pseries, cpp.cores)))

    grid = grid_by_base(cpp)
    panels = []
    by_base = {}
    for key, s, v in static_virtual_pairs(grid):
        if not (s.usable or v.usable):
            continue
        by_base.setdefault(key[0], []).append(
            (f"{key[1]} {key[2]}/{key[3]}",
             (s.median, s.q1, s.q3) if s.usable else None,
             (v.median, v.q1, v.q3) if v.usable else None))
    for base, groups in by_base.items():
        panels.append({"title": f"{base}: static vs virtual dispatch (error bars Q1–Q3)",
                       "groups": groups})
    if panels:
        jobs.append((f"static_vs_virtual.{fmt}", "static vs virtual",
                     "Median time per policy (backend, layout/scalar), static vs virtual "
                     "dispatch; log scale.", report_plots.plot_static_virtual, (panels,)))

    hpanels = []
    bases = [b for b in HEATMAP_BASES if b in grid] or list(grid)[:2]
    for base in bases:
        runs = [r for r in grid[base] if r.usable]
        values_of = {d: sorted({r.policy.get(d) for r in runs}, key=lambda v, d=d: sort_key(d, v))
                     for d in ("backend", "layout", "scalar")}
        backends = values_of["backend"]
        cols = [(lay, sc) for lay in values_of["layout"] for sc in values_of["scalar"]]
        if len(backends) < 1 or len(cols) < 2:
            continue
        dispatches = {r.policy.get("dispatch") for r in runs}
        pick = "static" if "static" in dispatches else None
        values = []
        for b in backends:
            row = []
            for lay, sc in cols:
                cand = [r.median for r in runs if r.policy.get("backend") == b
                        and r.policy.get("layout") == lay and r.policy.get("scalar") == sc
                        and (pick is None or r.policy.get("dispatch") == pick)]
                row.append(min(cand) if cand else None)
            values.append(row)
        hpanels.append({"title": f"{base} ({pick or 'fastest'} dispatch)",
                        "rows": [str(b) for b in backends],
                        "cols": [f"{lay}/{sc}" for lay, sc in cols], "values": values})
    if hpanels:
        jobs.append((f"backend_layout_heatmap.{fmt}", "backend × layout heat-map",
                     "Median per backend (rows) and layout/scalar (columns); colour and the "
                     "second line: ratio to the fastest cell of the panel.",
                     report_plots.plot_heatmap, (hpanels,)))

    for name, alt, caption, fn, fargs in jobs:
        path = os.path.join(img_dir, name)
        try:
            fn(path, *fargs)
            page.images.append((name, alt, caption))
        except Exception as e:  # one broken figure must not cost the page
            msg = f"plot {name} failed: {type(e).__name__}: {e}"
            print(f"report: {msg}", file=sys.stderr)
            page.cpp.notes.append(msg)
    return None


# --- main -------------------------------------------------------------------------------------
def have_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpp", required=True, help="rosetta-bench output (benchmarks/cpp.json)")
    ap.add_argument("--pytorch", help="PyTorch baseline (benchmarks/pytorch.json); optional")
    ap.add_argument("--out", default="docs/bench-results.md", help="the Markdown page")
    ap.add_argument("--img-dir", default="docs/bench-img", help="directory for the plots")
    ap.add_argument("--src-root", default=None,
                    help="source tree for the code metrics (default: this script's repository)")
    ap.add_argument("--img-format", choices=("svg", "png"), default="svg")
    ap.add_argument("--no-plots", action="store_true", help="write the page without plots")
    ap.add_argument("--strict", action="store_true",
                    help="exit 3 if a reference scenario is missing or failed")
    args = ap.parse_args(argv[1:])

    if not args.no_plots and not have_matplotlib():
        # `python3` may be another interpreter (pyenv, a virtualenv) than the one Debian's
        # package installs into: try the system interpreter once before going without plots.
        if (os.access(SYSTEM_PYTHON, os.X_OK) and not os.environ.get(REEXEC_ENV)
                and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
            os.environ[REEXEC_ENV] = "1"
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + argv[1:])

    cpp = Bench(args.cpp, "cpp")
    if not cpp.loaded:
        print(f"report: {cpp.error}", file=sys.stderr)
        return 1
    torch = Bench(args.pytorch, "pytorch") if args.pytorch else None
    if torch is not None and not torch.loaded:
        print(f"report: PyTorch baseline skipped: {torch.error}", file=sys.stderr)

    page = Page(args, cpp, torch)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    img_dir = os.path.abspath(args.img_dir)
    if args.no_plots:
        page.plot_note = "`--no-plots` was given"
    else:
        note = make_plots(page, img_dir, args.img_format)
        if note:
            page.plot_note = (note + "; install Debian's `python3-matplotlib` (and run with "
                              f"`{SYSTEM_PYTHON}`) to get them")
            print(f"report: no plots: {page.plot_note}", file=sys.stderr)

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch
           and epoch.isdigit() else datetime.datetime.now(datetime.timezone.utc))
    script = os.path.relpath(os.path.abspath(__file__))
    command = " ".join(shlex.quote(a) for a in ["python3", script] + argv[1:])
    page.header(command, now.strftime("%Y-%m-%d %H:%M UTC"))
    missing, failed = page.warnings()
    page.methodology()
    page.reference_tables()
    page.cpp_axes()
    page.findings()
    page.plots(os.path.relpath(img_dir, out_dir).replace(os.sep, "/"))
    page.code_metrics(args.src_root or REPO_ROOT)

    text = "\n".join(page.lines).rstrip("\n") + "\n"
    try:
        os.makedirs(out_dir, exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    except OSError as e:
        print(f"report: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 1
    ref_failed = [r for r in failed if r.base_id in REFERENCE_IDS and "@" not in r.id]
    print(f"report: wrote {args.out} ({len(cpp.runs)} rosetta scenarios"
          + (f", {len(torch.runs)} PyTorch" if torch is not None and torch.loaded else "")
          + (f", {len(page.images)} plot(s) in {args.img_dir})" if page.images else ", no plots)"))
    if missing:
        print(f"report: warning: {len(missing)} reference scenario(s) missing: "
              + ", ".join(missing), file=sys.stderr)
    if args.strict and (missing or ref_failed):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
