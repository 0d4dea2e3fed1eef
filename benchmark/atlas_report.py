#!/usr/bin/env python3
"""Turns the kernel atlas (benchmarks/atlas.json) into docs/kernel-atlas.md and its plots.

    python3 benchmark/atlas_report.py [--json benchmarks/atlas.json]
        [--out docs/kernel-atlas.md] [--img-dir docs/atlas-img] [--img-format svg|png]
        [--tie 0.02] [--no-plots]

The input is written by `rosetta-atlas` (benchmark/rosetta_atlas.cpp, `make bench-kernels`);
its fields are listed in docs/bench-schema.md. Every number, table and sentence of the page
is computed from that file: machine, STREAM bandwidth, FMA peak, sizes, method and
conventions come from its `metadata`, nothing is hard-coded. A file from a `--quick`,
`--filter`, `--backends` or `--sizes` run works too: the largest size present stands in for
the DRAM size (and the page says whether it really exceeds the L3), and whatever a table
cannot show (no naive rows, one size only) is left out or shown as "—".

Plots need matplotlib (Debian: python3-matplotlib; Agg backend, no display). As in
benchmark/report.py: if `python3` is another interpreter (pyenv, a virtualenv) without
matplotlib, the script retries once with /usr/bin/python3; if that fails too it writes the
page without plots and says so.

Exit status: 0 page written; 1 the input is unreadable or not an atlas file, or the page
could not be written; 2 bad command line.
"""

import argparse
import datetime
import importlib.util
import json
import math
import os
import random
import re
import shlex
import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_common  # noqa: E402  (after the path set-up)
from report_common import cell, code, dig, num, plain_log_ticks as _plain_log_ticks  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian's python3-matplotlib is importable
REEXEC_ENV = "ROSETTA_ATLAS_REPORT_REEXEC"
BACKEND_ORDER = ["naive", "eigen", "openblas", "blis", "hwy_static", "hwy_dynamic"]
DASH = "—"
CEILING_SHARE = 0.90  # "reaches the DRAM ceiling": >= 90 % of the 1-thread STREAM triad
STREAM_KINDS = ("copy", "triad", "read", "update")


# --- small helpers ----------------------------------------------------------------------------
def sig(x, digits=3):
    x = num(x)
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
    return f"{sig(ns)} ns"


def fmt_x(r):
    """A speed-up factor: 2 significant digits below 10, whole numbers above."""
    r = num(r)
    if r is None:
        return DASH
    if r >= 100:
        return f"{r:,.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×"


def fmt_pct(frac, digits=0):
    frac = num(frac)
    if frac is None:
        return DASH
    if 0 < abs(frac) < 0.01:
        return f"{100 * frac:.2g} %"
    return f"{100 * frac:.{digits}f} %"


def fmt_n(n):
    """1024 -> 1K, 16777216 -> 16M (powers of two as the atlas's sizes), else digits."""
    n = int(n)
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10}K"
    return str(n)


def fmt_bytes(b):
    b = num(b)
    if b is None:
        return DASH
    for div, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if b >= div:
            return f"{sig(b / div)} {unit}"
    return f"{b:.0f} B"


def md_text(s):
    """Free text from the JSON as Markdown: `*`, `_`, `<`, `[`, `]` escaped outside code spans."""
    def esc(t):
        return re.sub(r"([*_<\[\]\\])", r"\\\1", t)
    parts = str(s).split("`")
    tail = parts.pop() if len(parts) % 2 == 0 else None
    parts = [esc(t) if i % 2 == 0 else t for i, t in enumerate(parts)]
    text = "`".join(parts)
    return text if tail is None else text + "\\`" + esc(tail)


def table(headers, rows, align=None):
    """A GitHub-flavoured Markdown table; align: one 'l'/'r'/'c' per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(cell(h) for h in headers) + " |",
           "|" + "|".join(marks[a] for a in align) + "|"]
    for r in rows:
        r = list(r) + [DASH] * (len(headers) - len(r))
        out.append("| " + " | ".join(cell(c) for c in r) + " |")
    return out


def geomean(values):
    vals = [v for v in values if v is not None and v > 0]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def join_words(items, conj="and"):
    items = [str(i) for i in items]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


def plural(k, word, many=None):
    return f"{k:g} {word if k == 1 else (many or word + 's')}"


# --- the data ---------------------------------------------------------------------------------
class Row:
    """One result row (kernel x backend x n) with the fields the report uses."""

    def __init__(self, d, triad_1t):
        self.raw = d
        self.kernel = str(d.get("kernel"))
        self.backend = str(d.get("backend"))
        self.domain = str(d.get("domain") or "")
        self.n = int(d.get("n"))
        self.shape = str(d.get("shape") or "")
        self.bound = str(d.get("bound") or "memory")
        self.median = num(d.get("median_ns"))
        self.iqr = num(d.get("iqr_ns"))
        self.bytes = num(d.get("bytes"))
        self.flops = num(d.get("flops"))
        self.gbps = num(d.get("gbps"))
        self.gflops = num(d.get("gflops"))
        if self.median and self.median > 0:
            if self.gbps is None and self.bytes is not None:
                self.gbps = self.bytes / self.median
            if self.gflops is None and self.flops is not None:
                self.gflops = self.flops / self.median
        self.share_triad = num(d.get("share_of_triad"))
        if self.share_triad is None and self.gbps is not None and triad_1t:
            self.share_triad = self.gbps / triad_1t
        self.share_dram = num(d.get("share_of_dram"))
        self.share_peak = num(d.get("share_of_fma_peak"))
        self.cache_resident = bool(d.get("cache_resident"))

    @property
    def usable(self):
        return self.median is not None and self.median > 0


class Cell:
    """All backends of one (kernel, n): the winner, backends tied with it, speed-ups."""

    def __init__(self, kernel, n, rows, tie):
        self.kernel, self.n = kernel, n
        self.rows = {r.backend: r for r in rows if r.usable}
        ranked = sorted(self.rows.values(), key=lambda r: r.median)
        self.ranked = ranked
        self.best = ranked[0] if ranked else None
        self.tied = [r.backend for r in ranked if r.median <= ranked[0].median * (1 + tie)] \
            if ranked else []
        self.margin = (ranked[1].median / ranked[0].median) if len(ranked) > 1 else None
        naive = self.rows.get("naive")
        self.speedup = {b: naive.median / r.median for b, r in self.rows.items()} if naive else {}

    @property
    def winner(self):
        return self.best.backend if self.best else None

    def credit(self, backend):
        """Win credit: 1 for a clear win, 1/k for each of k backends within the tie band."""
        return 1.0 / len(self.tied) if backend in self.tied else 0.0


class Atlas:
    def __init__(self, path, tie):
        self.path, self.tie = path, tie
        self.error = None
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            self.error = f"cannot read {path}: {e}"
            return
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            self.error = f"{path} is not a rosetta-atlas file (no `results` list)"
            return
        self.doc = doc
        self.meta = doc.get("metadata") or {}
        self.stream = self.meta.get("stream") or {}
        self.triad_1t = num(self.stream.get("triad_gbps_1t"))
        self.triad_2t = num(self.stream.get("triad_gbps_2t"))
        self.dram_1t = num(self.meta.get("dram_traffic_gbps_1t"))
        self.peak = num(self.meta.get("fma_peak_gflops"))
        self.l3 = num(dig(self.meta, "cpu", "l3_bytes"))
        self.rows = []
        self.skipped = 0
        for d in doc["results"]:
            try:
                self.rows.append(Row(d, self.triad_1t))
            except (TypeError, ValueError):
                self.skipped += 1
        # Kernels in descriptor order (then any that only appear in the results).
        self.kinfo = {}
        for k in doc.get("kernels") or []:
            if isinstance(k, dict) and k.get("kernel"):
                self.kinfo[str(k["kernel"])] = k
        for r in self.rows:
            self.kinfo.setdefault(r.kernel, {"kernel": r.kernel, "domain": r.domain,
                                             "bound": r.bound})
        present = {r.kernel for r in self.rows}
        self.kernels = [k for k in self.kinfo if k in present]
        self.domains = []
        for k in self.kernels:
            dom = self.domain_of(k)
            if dom not in self.domains:
                self.domains.append(dom)
        found = {r.backend for r in self.rows}
        self.backends = ([b for b in BACKEND_ORDER if b in found]
                         + sorted(found - set(BACKEND_ORDER)))
        meta_sizes = [int(s) for s in self.meta.get("sizes") or [] if num(s)]
        row_sizes = {r.n for r in self.rows}
        self.sizes = [s for s in meta_sizes if s in row_sizes] + sorted(row_sizes - set(meta_sizes))
        self.sizes.sort()
        grouped = {}
        for r in self.rows:
            grouped.setdefault((r.kernel, r.n), []).append(r)
        self.cells = {key: Cell(key[0], key[1], rows, tie) for key, rows in grouped.items()}
        self.cells = {k: c for k, c in self.cells.items() if c.best is not None}
        self.dram_n = self.sizes[-1] if self.sizes else None

    # descriptors
    def domain_of(self, kernel):
        return str(self.kinfo.get(kernel, {}).get("domain") or "other")

    def bound_of(self, kernel):
        return str(self.kinfo.get(kernel, {}).get("bound") or "memory")

    def kernels_of(self, domain):
        return [k for k in self.kernels if self.domain_of(k) == domain]

    def cell(self, kernel, n):
        return self.cells.get((kernel, n))

    def cells_at(self, n=None):
        return [c for (k, m), c in self.cells.items() if n is None or m == n]

    def shape_of(self, kernel, n):
        c = self.cell(kernel, n)
        return c.best.shape if c else ""

    def implemented(self, backend):
        return [k for k in self.kernels if any(backend in c.rows for c in self.cells_of(k))]

    def cells_of(self, kernel):
        return [self.cells[(kernel, n)] for n in self.sizes if (kernel, n) in self.cells]


# --- the page ---------------------------------------------------------------------------------
class Page:
    def __init__(self, atlas, tie):
        self.a = atlas
        self.tie = tie
        self.lines = []
        self.images = {}  # key -> (file name, alt, caption)
        self.plot_note = None
        self.rel_img = "."
        self.number = 0
        self.toc_at = None

    def par(self, *lines):
        self.lines.extend(lines)
        self.lines.append("")

    def extend(self, lines):
        self.lines.extend(lines)
        self.lines.append("")

    def section(self, title):
        self.number += 1
        self.par(f"## {self.number}. {title}")

    def embed(self, key):
        if key in self.images:
            name, alt, caption = self.images[key]
            self.par(f"![{alt}]({self.rel_img}/{name})", "", f"*{caption}*")

    def insert_toc(self):
        """A contents line (GitHub anchors of the `## ` headings) where header() left room."""
        if self.toc_at is None:
            return
        heads = [ln[3:] for ln in self.lines if ln.startswith("## ")]

        def slug(h):
            return re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
        toc = "**Contents:** " + " · ".join(f"[{h}](#{slug(h)})" for h in heads)
        self.lines[self.toc_at:self.toc_at] = [toc, ""]

    @property
    def tie_pct(self):
        return f"{100 * self.tie:g} %"

    # -- header --------------------------------------------------------------------------------
    def header(self, command, now):
        a, m = self.a, self.a.meta
        self.par("<!-- Generated by benchmark/atlas_report.py; do not edit, rerun the script. -->",
                 "# Kernel atlas: results")
        self.par(f"*Generated by `benchmark/atlas_report.py` on {now} with:*", "", "```sh",
                 command, "```")
        kinds = len(a.kernels)
        self.par(f"Every float kernel of the atlas (`include/rosetta/atlas/`: {kinds} kernels in "
                 f"{len(a.domains)} domains) on every backend that implements it "
                 f"({', '.join(a.backends)}), at n = {', '.join(fmt_n(s) for s in a.sizes)}, "
                 f"single-threaded: {len(a.rows)} measurements from {code(a.path)}, written by "
                 f"`rosetta-atlas` (`make bench-kernels`). *n* is the problem size in elements; "
                 "kernels with a 2-D or batched shape map n to a shape by their `shape_rule` "
                 "(appendix).")
        if self.plot_note:
            self.par(f"> **No plots:** {self.plot_note}.")
        self.toc_at = len(self.lines)
        cpu = m.get("cpu") or {}
        comp = m.get("compiler") or {}
        hwy = m.get("hwy") or {}
        libs = m.get("libraries") or {}
        thr = m.get("threads") or {}
        rows = [
            ("CPU", f"{cpu.get('model', DASH)}; {cpu.get('logical_cores', DASH)} logical cores; "
                    f"AVX-512: {'yes' if cpu.get('avx512') else 'no'}; L3 {fmt_bytes(a.l3)}"),
            ("OS", m.get("os", DASH)),
            ("compiler", f"{comp.get('id', DASH)} {comp.get('version', '')}".strip()),
            ("build type / flags", f"{comp.get('build_type', DASH)}, `{comp.get('flags', '')}`"),
            ("libraries", "; ".join(f"{k} {v}" for k, v in sorted(libs.items())) or DASH),
            ("Highway static target", hwy.get("static_target", DASH)),
            ("Highway dynamic dispatch", f"chose {hwy.get('dynamic_target', DASH)} of "
             f"{hwy.get('dynamic_compiled_targets', DASH)} "
             f"({hwy.get('dynamic_build', 'build not recorded')})"),
            ("threads", ", ".join(f"{k}={v}" for k, v in sorted(thr.items())) or DASH),
            ("run", f"{m.get('timestamp', DASH)}, git `{m.get('git_rev', DASH)}`, "
                    f"{sig(num(m.get('wall_seconds')))} s, seed {m.get('seed', DASH)}"
                    + (", `--quick`" if m.get("quick") else "")
                    + (f", `--filter {m.get('filter')}`" if m.get("filter") else "")
                    + (f", `--backends {m.get('backend_filter')}`" if m.get("backend_filter")
                       else "")),
        ]
        self.section("Machine and method")
        self.extend(table(["", "this run (`metadata`)"], [(k, md_text(v)) for k, v in rows], "ll"))

        st = a.stream
        srows = []
        for kind in STREAM_KINDS:
            one, two = num(st.get(f"{kind}_gbps_1t")), num(st.get(f"{kind}_gbps_2t"))
            srows.append((kind, sig(one), sig(two),
                          fmt_x(two / one) if one and two else DASH))
        self.par(f"**Bandwidth** (STREAM-style, measured in this run over "
                 f"{st.get('arrays', DASH)} arrays of {fmt_bytes(num(st.get('array_bytes')))}; "
                 f"{md_text(dig(m, 'conventions', 'stream') or '')}).")
        self.extend(table(["kernel", "GB/s, 1 thread", f"GB/s, {st.get('threads_2t', 2)} threads",
                           "2T / 1T"], srows, "lrrr"))
        self.par(f"**DRAM ceiling of one thread** `dram_traffic_gbps_1t` = {sig(a.dram_1t)} GB/s "
                 f"({md_text(dig(m, 'conventions', 'dram_traffic_gbps_1t') or '')}). "
                 f"**FMA peak** `fma_peak_gflops` = {sig(a.peak)} GFLOPS (one core, FP32, "
                 "measured in the same run).")
        meth = m.get("method") or {}
        self.par(f"**Method.** Sizes n = {', '.join(f'{fmt_n(s)} ({s:,})' for s in a.sizes)}. "
                 f"{md_text(meth.get('statistic', ''))}; between {meth.get('min_trials', DASH)} "
                 f"and {meth.get('max_trials', DASH)} trials per measurement, each trial about "
                 f"{fmt_time(num(meth.get('trial_target_ns')))} of calls, at most about "
                 f"{fmt_time(num(meth.get('budget_ns')))} of trials per measurement; warm-up: "
                 f"{md_text(meth.get('warmup', DASH))}. Buffer sets: "
                 f"{md_text(meth.get('buffer_sets', DASH))}.")
        conv = m.get("conventions") or {}
        if conv:
            self.par("**Conventions** (`metadata.conventions`, verbatim):", "",
                     *[f"- `{k}`: {md_text(v)}" for k, v in conv.items()])
        rel_iqr = [r.iqr / r.median for r in a.rows if r.usable and r.iqr is not None]
        if rel_iqr:
            self.par(f"**Noise and ties.** The median relative IQR over all {len(rel_iqr)} rows "
                     f"is {fmt_pct(statistics.median(rel_iqr), 1)} (90th percentile "
                     f"{fmt_pct(sorted(rel_iqr)[int(0.9 * (len(rel_iqr) - 1))], 1)}). The "
                     f"*winner* of a (kernel, n) cell is the backend with the fastest median; "
                     f"every backend within {self.tie_pct} of that median is **tied** with it. "
                     f"Win counts therefore come in three kinds: *fastest* (the fastest median, "
                     f"ties ignored), *clear* (fastest and more than {self.tie_pct} ahead of the "
                     f"next), and *win credit*, where a cell with k tied backends gives each "
                     f"1/k — the credits of all backends add up to the number of cells, and "
                     f"the win **shares** below are credits / cells. Speed-up over naive = "
                     f"naive median / backend median of the same cell.")
        if a.skipped:
            self.par(f"> **Note:** {a.skipped} result row(s) without a usable `n` were skipped.")

    # -- 2. wins --------------------------------------------------------------------------------
    def wins(self):
        a = self.a
        self.section("Wins per backend")
        total = len(a.cells)
        rows = []
        for b in a.backends:
            mine = [c for c in a.cells.values() if b in c.rows]
            fastest = sum(1 for c in a.cells.values() if c.winner == b)
            clear = sum(1 for c in a.cells.values() if c.tied == [b])
            tied = sum(1 for c in a.cells.values() if b in c.tied)
            credit = sum(c.credit(b) for c in a.cells.values())
            rows.append((b, f"{len(a.implemented(b))}/{len(a.kernels)}", len(mine), fastest,
                         clear, tied, f"{credit:.1f}", fmt_pct(credit / total if total else None),
                         fmt_pct(credit / len(mine) if mine else None)))
        self.par(f"All {total} (kernel, n) cells. *Cells* = cells the backend implements. "
                 f"*Share* = win credit / all cells; *share where present* = win credit / the "
                 f"backend's own cells, so a backend that implements only some kernels is "
                 f"judged on those.")
        self.extend(table(["backend", "kernels", "cells", "fastest", "clear wins",
                           f"wins incl. ties (±{self.tie_pct})", "win credit", "share",
                           "share where present"], rows, "lrrrrrrrr"))
        if len(a.sizes) > 1:
            hdr = ["backend"] + [f"n = {fmt_n(n)}" for n in a.sizes]
            rows = []
            for b in a.backends:
                line = [b]
                for n in a.sizes:
                    cs = a.cells_at(n)
                    mine = [c for c in cs if b in c.rows]
                    credit = sum(c.credit(b) for c in cs)
                    line.append(f"{fmt_pct(credit / len(cs) if cs else None)} "
                                f"({fmt_pct(credit / len(mine)) if mine else DASH})")
                rows.append(line)
            self.par("Win share per size (win credit / cells of that size; in brackets: / the "
                     "backend's own cells of that size):")
            self.extend(table(hdr, rows, "l" + "r" * len(a.sizes)))
        self.embed("wins")

    # -- 3. speed-up over naive ----------------------------------------------------------------
    def speedup_values(self, backend, n=None):
        out = []
        for c in self.a.cells_at(n):
            s = c.speedup.get(backend)
            if s is not None:
                out.append((s, c))
        return out

    def speedups(self):
        a = self.a
        self.section("Speed-up over naive")
        if "naive" not in a.backends:
            self.par("No naive rows in this file (`--backends` filter?): no speed-ups.")
            return
        rows = []
        for b in a.backends:
            if b == "naive":
                continue
            vals = self.speedup_values(b)
            if not vals:
                rows.append((b, 0))
                continue
            xs = [v for v, _ in vals]
            lo = min(vals, key=lambda t: t[0])
            hi = max(vals, key=lambda t: t[0])
            faster = sum(1 for x in xs if x > 1 + self.tie)
            slower = sum(1 for x in xs if x < 1 / (1 + self.tie))
            rows.append((b, len(xs), fmt_x(statistics.median(xs)), fmt_x(geomean(xs)),
                         fmt_x(statistics.fmean(xs)),
                         f"{fmt_x(lo[0])} ({lo[1].kernel} {fmt_n(lo[1].n)})",
                         f"{fmt_x(hi[0])} ({hi[1].kernel} {fmt_n(hi[1].n)})",
                         f"{faster} / {slower}"))
        self.par("Naive median / backend median over every (kernel, n) the backend implements "
                 "(naive implements all). The arithmetic mean is pulled up by a few large "
                 "factors (gemm); the geometric mean and the median are the typical factor. "
                 f"*Faster / slower*: cells more than {self.tie_pct} faster / slower than naive.")
        self.extend(table(["backend", "cells", "median", "geomean", "mean", "min", "max",
                           "faster / slower"], rows, "lrrrrllr"))
        if len(a.sizes) > 1:
            rows = []
            for b in a.backends:
                if b == "naive":
                    continue
                line = [b]
                for n in a.sizes:
                    xs = [v for v, _ in self.speedup_values(b, n)]
                    line.append(f"{fmt_x(geomean(xs))} ({fmt_x(min(xs))}–{fmt_x(max(xs))})"
                                if xs else DASH)
                rows.append(line)
            self.par("Per size: geometric mean (range).")
            self.extend(table(["backend"] + [f"n = {fmt_n(n)}" for n in a.sizes], rows,
                              "l" + "r" * len(a.sizes)))
        self.embed("speedup")

    # -- 4. domain and kernel tables -----------------------------------------------------------
    def domain_winner(self, domain, n):
        """(backend, geomean speed-up over naive | None, win credit, kernels) or None.
        Among the backends that implement every kernel of the domain at n, the one with the
        smallest geometric mean of (its median / the cell's fastest median)."""
        a = self.a
        cells = [a.cell(k, n) for k in a.kernels_of(domain) if a.cell(k, n)]
        if not cells:
            return None
        ranked = []
        for b in a.backends:
            if all(b in c.rows for c in cells):
                ranked.append((geomean([c.rows[b].median / c.best.median for c in cells]), b))
        if not ranked:
            return None
        ranked.sort()
        b = ranked[0][1]
        close = [o for slow, o in ranked[1:] if slow <= ranked[0][0] * (1 + self.tie)]
        sp = [c.speedup.get(b) for c in cells]
        gm = geomean(sp) if all(s is not None for s in sp) else None
        return b, gm, sum(c.credit(b) for c in cells), len(cells), close

    def domains(self):
        a = self.a
        self.section("Winners per domain and per kernel")
        self.par("**Per domain.** The domain's winner at a size is the backend with the smallest "
                 "geometric mean of (its median / the fastest median) over the domain's "
                 "kernels, among backends that implement all of them (so OpenBLAS and BLIS "
                 "compete only in domains they cover completely; their single-kernel wins show "
                 "in the per-kernel tables). Cell: winner, its geometric-mean speed-up over "
                 "naive, its win credit / the domain's kernels at that size, and (≈ …) "
                 f"backends whose geometric mean is within {self.tie_pct} of the winner's.")
        rows = []
        for dom in a.domains:
            line = [dom, str(len(a.kernels_of(dom)))]
            for n in a.sizes:
                w = self.domain_winner(dom, n)
                line.append(DASH if w is None else
                            f"**{w[0]}** {fmt_x(w[1])} · {w[2]:.3g}/{w[3]}"
                            + (f" (≈ {', '.join(w[4])})" if w[4] else ""))
            rows.append(line)
        self.extend(table(["domain", "kernels"] + [f"n = {fmt_n(n)}" for n in a.sizes], rows,
                          "lr" + "l" * len(a.sizes)))

        self.par("**Per kernel.** Winner (backends tied within "
                 f"{self.tie_pct} in brackets), its median (IQR), how far ahead of the runner-up "
                 "it is, its speed-up over naive, and what it achieves: memory-bound kernels "
                 "GB/s (kernel bytes / median) and share of the 1-thread STREAM triad, or "
                 "*cache-resident* when the row's rate exceeds the DRAM ceiling (then it is an "
                 "effective rate, not DRAM bandwidth); compute-bound kernels GFLOPS and share "
                 "of the FMA peak.")
        for dom in a.domains:
            rows = []
            for k in a.kernels_of(dom):
                for n in a.sizes:
                    c = a.cell(k, n)
                    if c is None:
                        continue
                    r = c.best
                    others = [b for b in c.tied if b != r.backend]
                    win = f"**{r.backend}**" + (f" (≈ {', '.join(others)})" if others else "")
                    rows.append((code(k), fmt_n(n), r.shape, win,
                                 f"{fmt_time(r.median)} ({fmt_time(r.iqr)})",
                                 fmt_x(c.margin), fmt_x(c.speedup.get(r.backend)),
                                 self.achieved(r)))
            self.par(f"### {dom}")
            self.extend(table(["kernel", "n", "shape", "winner", "median (IQR)", "vs 2nd",
                               "vs naive", "achieved"], rows, "llllrrrl"))

    def achieved(self, r, with_rate=True):
        if r.bound == "compute":
            if r.gflops is None:
                return DASH
            return f"{sig(r.gflops)} GFLOPS · {fmt_pct(r.share_peak, 1)} of peak"
        if r.gbps is None:
            return DASH
        if r.cache_resident:
            return f"cache-resident ({sig(r.gbps)} GB/s eff.)" if with_rate else "cache-resident"
        return f"{sig(r.gbps)} GB/s · {fmt_pct(r.share_triad)} of triad"

    # -- 5. crossovers --------------------------------------------------------------------------
    def crossover_text(self, kernel):
        """('dot', 'eigen at 1K–64K → hwy_dynamic from 1M', clear changes, changes)."""
        a = self.a
        cells = a.cells_of(kernel)
        if not cells:
            return None
        runs = []  # [backend, first n, last n]
        clear = changes = 0
        notes = []
        for c in cells:
            if runs and runs[-1][0] == c.winner:
                runs[-1][2] = c.n
                continue
            if runs:
                changes += 1
                prev = runs[-1][0]
                if prev in c.tied:
                    notes.append(f"{prev} within {self.tie_pct} at {fmt_n(c.n)}")
                else:
                    clear += 1
            runs.append([c.winner, c.n, c.n])
        last = cells[-1].n
        parts = []
        for i, (b, lo, hi) in enumerate(runs):
            if lo == hi and (i == 0 or hi != last):
                where = f"at {fmt_n(lo)}"
            elif hi == last and i > 0:
                where = f"from {fmt_n(lo)} on"
            else:
                where = f"at {fmt_n(lo)}–{fmt_n(hi)}"
            parts.append(f"{b} {where}")
        text = " → ".join(parts)
        if len(runs) == 1:
            text = f"{runs[0][0]} at every size"
        if notes:
            text += f" (not clear: {'; '.join(notes)})"
        return text, clear, changes

    def crossovers(self):
        a = self.a
        self.section("Crossover sizes")
        if len(a.sizes) < 2:
            self.par("One size only in this file: no crossovers.")
            return
        self.par(f"The fastest backend of each kernel as n grows. A change counts as *clear* "
                 f"when the previous winner is more than {self.tie_pct} behind the new one at "
                 "the size where the winner changes; otherwise it is listed but marked as not "
                 "clear (a tie that the median happened to break).")
        stable, moving = [], []
        for k in a.kernels:
            res = self.crossover_text(k)
            if res is None:
                continue
            text, clear, changes = res
            line = f"- `{k}` ({a.domain_of(k)}): {text}"
            (moving if clear else stable).append(line)
        self.par(f"**{len(moving)} kernels change winner clearly at least once:**", "", *moving)
        self.par(f"**{len(stable)} kernels have no clear crossover** (one winner at every "
                 "size, or changes only within the tie band):", "",
                 *stable)

    # -- 6. bandwidth and compute ---------------------------------------------------------------
    def dram_note(self):
        """(label, note, real): which size stands for DRAM, and whether it really is DRAM
        (more than half of the memory-bound kernels move more than the L3 per call)."""
        a = self.a
        n = a.dram_n
        mem = [a.cell(k, n) for k in a.kernels if a.bound_of(k) == "memory" and a.cell(k, n)]
        over = [c for c in mem if a.l3 and c.best.bytes and c.best.bytes > a.l3]
        real = bool(mem) and 2 * len(over) > len(mem)
        if real:
            label = f"n = {fmt_n(n)}, the DRAM size"
        else:
            label = (f"n = {fmt_n(n)}, the largest size in this file"
                     f"{' (a `--quick` run)' if a.meta.get('quick') else ''}, standing in for "
                     "the DRAM size")
        note = (f"{len(over)} of {len(mem)} memory-bound kernels move more than the L3 "
                f"({fmt_bytes(a.l3)}) per call there")
        if not real:
            note += ", so most of these rates come from the caches, not DRAM"
        return label, note, real

    def bandwidth(self):
        a = self.a
        n = a.dram_n
        self.section("Bandwidth and compute")
        if n is None:
            return
        head, tail, _ = self.dram_note()
        mem = [k for k in a.kernels if a.bound_of(k) == "memory" and a.cell(k, n)]
        upd = [k for k in mem if re.search(r"\bin place\b|\+=",
                                           str(a.kinfo.get(k, {}).get("summary", "")))]
        in_place = f" ({', '.join(upd)}, per their summaries)" if upd else ""
        self.par(f"**Memory-bound kernels at {head}** ({tail}). Cells: achieved GB/s (kernel "
                 f"bytes / median) as a share of the 1-thread STREAM triad "
                 f"({sig(a.triad_1t)} GB/s); *cache* where the row is flagged cache-resident "
                 f"(above 1.1 × the {sig(a.dram_1t)} GB/s one-thread DRAM ceiling). The best "
                 f"backend's rate is also given as a share of the "
                 f"{a.stream.get('threads_2t', 2)}-thread triad ({sig(a.triad_2t)} GB/s) and of "
                 "the DRAM ceiling. Kernel bytes count no write-allocate, so a kernel that "
                 "writes a separate output tops out near the triad figure, while kernels "
                 f"that update arrays in place{in_place} can pass it (STREAM update: "
                 f"{sig(num(a.stream.get('update_gbps_1t')))} GB/s). Kernels whose best rate is "
                 "far below the triad are limited by arithmetic (transcendentals, random "
                 "numbers) or by their access pattern, not by DRAM.")
        bks = [b for b in a.backends if any(b in a.cell(k, n).rows for k in mem)]
        rows = []
        for k in mem:
            c = a.cell(k, n)
            line = [code(k), fmt_bytes(c.best.bytes)]
            for b in bks:
                r = c.rows.get(b)
                if r is None:
                    line.append("")
                elif r.cache_resident:
                    line.append("cache")
                else:
                    txt = fmt_pct(r.share_triad)
                    line.append(f"**{txt}**" if b == c.winner else txt)
            r = c.best
            line += [c.winner, sig(r.gbps)]
            if r.cache_resident:
                line += ["cache-resident", "", ""]
            else:
                line += [fmt_pct(r.gbps / a.triad_1t if a.triad_1t and r.gbps else None),
                         fmt_pct(r.gbps / a.triad_2t if a.triad_2t and r.gbps else None),
                         fmt_pct(r.share_dram)]
            rows.append(line)
        self.extend(table(["kernel", "bytes/call"] + bks +
                          ["best", "GB/s", "of triad 1T", "of triad 2T", "of DRAM ceiling"],
                          rows, "lr" + "r" * len(bks) + "lrrrr"))
        self.embed("bandwidth")

        comp = compute_kernels(a)
        if comp:
            bks = [b for b in a.backends if any(b in c.rows for k in comp for c in a.cells_of(k))]
            rows = []
            for k in comp:
                for c in a.cells_of(k):
                    line = [code(k), fmt_n(c.n), c.best.shape]
                    for b in bks:
                        r = c.rows.get(b)
                        if r is None or r.gflops is None:
                            line.append("")
                            continue
                        txt = f"{sig(r.gflops)} ({fmt_pct(r.share_peak, 1)})"
                        line.append(f"**{txt}**" if b == c.winner else txt)
                    rows.append(line)
            self.par(f"**Compute-bound kernels** (the rows' `bound` = compute: "
                     f"{', '.join(comp)}): GFLOPS (share of the {sig(a.peak)} GFLOPS FMA peak) "
                     "per backend and size; the fastest in bold.")
            self.extend(table(["kernel", "n", "shape"] + bks, rows, "lll" + "r" * len(bks)))
            self.embed("gflops")

    # -- 7. plots ---------------------------------------------------------------------------------
    # -- 8. findings ------------------------------------------------------------------------------
    def findings(self):
        a = self.a
        self.section("Findings")
        out = []
        total = len(a.cells)
        credit = {b: sum(c.credit(b) for c in a.cells.values()) for b in a.backends}
        if not total:
            self.par("No usable results.")
            return
        lead = max(a.backends, key=lambda b: credit[b])
        per_size = []
        for n in a.sizes:
            cs = a.cells_at(n)
            cr = {b: sum(c.credit(b) for c in cs) for b in a.backends}
            top = max(a.backends, key=lambda b: cr[b])
            per_size.append((n, top, cr[top] / len(cs) if cs else 0))
        led = [fmt_n(n) for n, t, _ in per_size if t == lead]
        doms = [d for d in a.domains
                if sum(1 for n in a.sizes if (self.domain_winner(d, n) or [None])[0] == lead)
                > len(a.sizes) / 2]
        fam = {}
        for b in a.backends:
            fam.setdefault(b.split("_")[0], []).append(b)
        s = (f"**{lead}** wins most: {credit[lead]:.1f} of {total} cells "
             f"({fmt_pct(credit[lead] / total)} of the win credit)")
        if len(fam.get(lead.split("_")[0], [])) > 1:
            fb = fam[lead.split("_")[0]]
            fc = sum(credit[b] for b in fb)
            s += (f"; with its sibling{'s' if len(fb) > 2 else ''} "
                  f"{join_words([b for b in fb if b != lead])} the "
                  f"{lead.split('_')[0]} family takes {fmt_pct(fc / total)}")
        s += "."
        if led:
            s += f" It leads the win share at n = {join_words(led)}"
            others = [(fmt_n(n), t, sh) for n, t, sh in per_size if t != lead]
            if others:
                s += ("; " + "; ".join(f"at {n} {t} leads ({fmt_pct(sh)})"
                                       for n, t, sh in others))
            s += "."
        if doms:
            s += f" It is the domain winner at most sizes in {join_words(doms)}."
        out.append(s)

        others = [b for b in a.backends if b != lead and b.split("_")[0] != lead.split("_")[0]]
        for b in others:
            if b == "naive":
                continue
            dwins = [d for d in a.domains
                     if sum(1 for n in a.sizes if (self.domain_winner(d, n) or [None])[0] == b)
                     > len(a.sizes) / 2]
            kwins = [k for k in a.kernels
                     if sum(c.credit(b) for c in a.cells_of(k)) > len(a.cells_of(k)) / 2]
            if dwins or kwins:
                bits = []
                if dwins:
                    bits.append(f"is the domain winner at most sizes in {join_words(dwins)}")
                if kwins:
                    bits.append(f"wins most sizes of {join_words(code(k) for k in kwins)}")
                out.append(f"**{b}** " + " and ".join(bits) + ".")

        # naive
        if "naive" in a.backends:
            nw = [c for c in a.cells.values() if "naive" in c.tied]
            by_n = {n: [c for c in nw if c.n == n] for n in a.sizes}
            counts = ", ".join(f"{len(v)} at {fmt_n(n)}" for n, v in by_n.items())
            clear = [c for c in nw if c.tied == ["naive"]]
            s = (f"**naive** wins or ties (within {self.tie_pct}) {len(nw)} of {total} cells "
                 f"({counts}); {len(clear)} of them outright." if nw else
                 "**naive** wins no cell.")
            small = a.sizes[0]
            sc = by_n.get(small, [])
            if sc:
                times = [c.best.median for c in sc]
                kinds = sorted({a.domain_of(c.kernel) for c in sc},
                               key=lambda d: (-sum(1 for c in sc if a.domain_of(c.kernel) == d),
                                              a.domains.index(d)))
                s += (f" At n = {fmt_n(small)} the winning times of those cells are "
                      f"{fmt_time(min(times))}–{fmt_time(max(times))}: fixed per-call costs "
                      "(a call into a library, argument checks, run-time dispatch, alignment "
                      "peeling and remainder loops) weigh as much as the loop body there, and "
                      "the plain loop, which gcc vectorises itself under "
                      f"`{dig(a.meta, 'compiler', 'flags') or ''}`, has almost none; mostly "
                      f"{join_words(kinds[:3])} kernels.")
            big = [c for c in nw if c.n == a.sizes[-1] and a.bound_of(c.kernel) == "memory"]
            if big and len(a.sizes) > 1 and self.dram_note()[2]:
                s += (f" At n = {fmt_n(a.sizes[-1])} naive is among the fastest in {len(big)} "
                      "memory-bound kernels: when DRAM is the limit, every backend that streams "
                      "the data once is equally fast.")
            out.append(s)

        # Highway static vs dynamic
        if "hwy_static" in a.backends and "hwy_dynamic" in a.backends:
            hw = a.meta.get("hwy") or {}
            pairs = [(c.rows["hwy_dynamic"].median / c.rows["hwy_static"].median, c)
                     for c in a.cells.values()
                     if "hwy_static" in c.rows and "hwy_dynamic" in c.rows]
            if pairs:
                rs = [p for p, _ in pairs]
                within = sum(1 for p in rs if abs(math.log(p)) <= math.log(1 + self.tie))
                per = ", ".join(
                    f"{fmt_x(geomean([p for p, c in pairs if c.n == n]))} at {fmt_n(n)}"
                    for n in a.sizes if any(c.n == n for _, c in pairs))
                st, dt = hw.get("static_target"), hw.get("dynamic_target")
                s = "**Highway static vs dynamic dispatch:** "
                if st and dt:
                    s += (f"the dynamic build (compiled for "
                          f"{hw.get('dynamic_compiled_targets', '?')}, chose {dt} at run time) "
                          f"runs {'the same target as' if st == dt else 'a different target than'}"
                          f" the static build ({st}, compiled with "
                          f"`{dig(a.meta, 'compiler', 'flags') or '?'}`). ")
                s += (f"Dynamic / static median time: geometric mean "
                     f"{fmt_x(geomean(rs))} ({per}); {within} of {len(rs)} cells within "
                     f"{self.tie_pct}; range {fmt_x(min(rs))}–{fmt_x(max(rs))}.")
                far = sorted(pairs, key=lambda t: -abs(math.log(t[0])))[:3]
                far = [(p, c) for p, c in far if abs(math.log(p)) > math.log(1 + 5 * self.tie)]
                if far:
                    sep = [p_c for p_c in far if separated(p_c[1].rows["hwy_static"],
                                                           p_c[1].rows["hwy_dynamic"])]
                    listed = join_words(f"{code(c.kernel)} {fmt_n(c.n)}: {fmt_x(p)}"
                                        for p, c in far)
                    s += (f" The largest differences ({listed}"
                          f"; {len(sep)} of {len(far)} with non-overlapping quartile ranges) "
                          "are too large for the indirect call, which costs nanoseconds: they "
                          "point to code generation — the dynamic library's build is "
                          f"recorded as “{md_text(hw.get('dynamic_build', '?'))}”, "
                          "so code "
                          "outside Highway's per-target functions is compiled for the baseline "
                          "there — or, where the quartiles overlap, to noise.")
                else:
                    s += (" No cell differs by more than "
                          f"{fmt_pct(5 * self.tie)}: the indirect call of the dynamic dispatch "
                          "costs nothing measurable here.")
                out.append(s)

        # BLAS libraries
        libs = a.meta.get("libraries") or {}
        blas = [b for b in ("openblas", "blis") if b in a.backends]
        if blas:
            bits = []
            for b in blas:
                lib = str(libs.get(b, ""))
                m = re.search(r"\(([^)]+)\)", lib) if b == "blis" else None
                if b == "blis":
                    cfg = m.group(1) if m else None
                    desc = f"BLIS {lib.split()[0] if lib else '(version not recorded)'}"
                    if cfg:
                        desc += (f" runs its `{cfg}` configuration"
                                 + (" (portable C reference kernels, no hand-written SIMD "
                                    "micro-kernels for this CPU)" if cfg == "generic" else ""))
                else:
                    toks = lib.split()
                    core = [t for t in toks if t != "OpenBLAS" and not re.fullmatch(
                        r"[A-Z0-9_]+(=\S*)?|[0-9.]+", t)]
                    desc = f"OpenBLAS {toks[1] if len(toks) > 1 else '(version not recorded)'}"
                    if core:
                        desc += (f" picked its `{core[0]}` kernels"
                                 + (" (AVX2 + FMA)" if core[0] == "Haswell" else "")
                                 + (" on this AVX-512 CPU" if dig(a.meta, "cpu", "avx512")
                                    else ""))
                    if "DYNAMIC_ARCH" in toks:
                        desc += " (a DYNAMIC_ARCH build choosing at load time)"
                vals = [v for v, _ in self.speedup_values(b)]
                cr = credit[b]
                mine = len([c for c in a.cells.values() if b in c.rows])
                desc += (f"; over its {plural(len(a.implemented(b)), 'kernel')} it is "
                         f"{fmt_x(geomean(vals))} naive's speed (geometric mean) and wins "
                         f"{cr:.1f} of its {mine} cells (win credit, "
                         f"{fmt_pct(cr / mine if mine else None)})")
                g = [c for c in a.cells_of("gemm") if b in c.rows]
                if g:
                    c = g[-1]
                    desc += (f"; its gemm at {c.rows[b].shape} reaches "
                             f"{sig(c.rows[b].gflops)} GFLOPS vs {sig(c.best.gflops)} for "
                             f"{c.winner}")
                bits.append(desc)
            out.append("**BLAS libraries on this CPU:** " + ". ".join(bits) + ".")

        # DRAM ceiling
        n = a.dram_n
        head, tail, real = self.dram_note()
        mem = [a.cell(k, n) for k in a.kernels if a.bound_of(k) == "memory" and a.cell(k, n)]
        mem = [c for c in mem if c.best.gbps is not None]
        if mem and a.triad_1t:
            res = [c for c in mem if c.best.cache_resident]
            live = [c for c in mem if not c.best.cache_resident]
            at = sorted([c for c in live if c.best.gbps >= CEILING_SHARE * a.triad_1t],
                        key=lambda c: -c.best.gbps)
            low = sorted([c for c in live if c.best.gbps < 0.5 * a.triad_1t],
                         key=lambda c: c.best.gbps)
            s = (f"**{'DRAM ceiling' if real else 'Bandwidth at the largest size'}** "
                 f"({head}; {tail}): {len(at)} of {len(mem)} memory-bound "
                 f"kernels reach ≥ {fmt_pct(CEILING_SHARE)} of the 1-thread triad "
                 f"({sig(a.triad_1t)} GB/s) with their best backend")
            if at:
                top = at[0]
                s += (f", up to {sig(top.best.gbps)} GB/s ({code(top.kernel)}, "
                      f"{top.winner}: {fmt_pct(top.best.gbps / a.triad_1t)} of triad, "
                      f"{fmt_pct(top.best.share_dram)} of the DRAM ceiling)")
            s += "."
            if res:
                s += (f" {len(res)} kernel(s) are cache-resident even there: "
                      f"{join_words(code(c.kernel) for c in res)}.")
            if low:
                listed = join_words(f"{code(c.kernel)} ({sig(c.best.gbps)} GB/s)" for c in low)
                s += (f" Below half the triad: {listed}"
                      " — bound by arithmetic or access pattern, not DRAM.")
            if a.triad_2t:
                s += (f" One thread already gets {fmt_pct(a.triad_1t / a.triad_2t)} of the "
                      f"{a.stream.get('threads_2t', 2)}-thread triad on this machine.")
            out.append(s)

        # gemm and the other compute-bound kernels
        for k in compute_kernels(a):
            rows = [r for c in a.cells_of(k) for r in c.rows.values() if r.share_peak is not None]
            if not rows:
                continue
            best = max(rows, key=lambda r: r.share_peak)
            nv = [r for r in rows if r.backend == "naive"]
            s = (f"`{k}`: the best share of the {sig(a.peak) + ' GFLOPS ' if a.peak else ''}"
                 "FMA peak is "
                 f"{fmt_pct(best.share_peak, 1)} ({sig(best.gflops)} GFLOPS, {best.backend} at "
                 f"{best.shape}, n = {fmt_n(best.n)})")
            last = a.cells_of(k)[-1]
            if best.n != last.n and last.best.share_peak is not None:
                s += (f"; at the largest size ({last.best.shape}) the best is "
                      f"{fmt_pct(last.best.share_peak, 1)} ({last.winner})")
            if nv:
                nb = max(nv, key=lambda r: r.share_peak)
                s += f"; naive peaks at {fmt_pct(nb.share_peak, 1)}"
            out.append(s + ".")
        self.par(*[f"- {s}" for s in out])

    # -- appendix ---------------------------------------------------------------------------------
    def reproduce(self, json_rel):
        a = self.a
        self.par("## How to reproduce", "",
                 "```sh",
                 "make bench-kernels                      # rosetta-atlas, then this page",
                 "make bench-kernels ATLAS_FLAGS=--quick  # 1K, 64K, 1M only (no DRAM size)",
                 "make bench                              # model benchmark, then the same",
                 "python3 benchmark/atlas_report.py       # only this page, from the JSON (--help)",
                 "```", "",
                 f"The raw results are in {code(json_rel)} (fields: `docs/bench-schema.md`): "
                 "`metadata` (machine, compiler, libraries, `hwy` targets, `stream` GB/s for 1 "
                 "and 2 threads, `fma_peak_gflops`, `dram_traffic_gbps_1t`, `method`, "
                 "`conventions`, `sizes`), `kernels` (one descriptor per kernel: `kernel`, "
                 "`domain`, `bound`, `shape_rule`, `backends`, `summary`) and `results` (one "
                 "row per kernel × backend × n: `median_ns`, `iqr_ns`, `min_ns`, `trials`, "
                 "`calls_per_trial`, `buffer_sets`, `shape`, `elements`, `bytes`, `flops`, "
                 "`gbps`, `gflops`, `share_of_triad`, `share_of_dram`, `share_of_fma_peak`, "
                 "`cache_resident`, `bound`).")
        rows = []
        for k in a.kernels:
            info = a.kinfo.get(k, {})
            rows.append((code(k), a.domain_of(k), a.bound_of(k),
                         md_text(info.get("summary", "")), md_text(info.get("shape_rule", "")),
                         ", ".join(info.get("backends") or [])))
        self.par("## Appendix: the kernels")
        self.extend(table(["kernel", "domain", "bound", "computes", "n → shape", "backends"],
                          rows, "llllll"))


def separated(r1, r2):
    """True if the quartile ranges (median ± IQR/2, as an approximation) do not overlap."""
    if r1.iqr is None or r2.iqr is None:
        return False
    lo, hi = sorted((r1, r2), key=lambda r: r.median)
    return lo.median + lo.iqr / 2 < hi.median - hi.iqr / 2


def compute_kernels(a):
    """Compute-bound kernels: gemm first, then its domain, then the rest in atlas order."""
    comp = [k for k in a.kernels if a.bound_of(k) == "compute"]
    gdom = a.domain_of("gemm") if "gemm" in a.kinfo else None
    return sorted(comp, key=lambda k: (k != "gemm", a.domain_of(k) != gdom, a.kernels.index(k)))


# --- plots ------------------------------------------------------------------------------------
def _save(fig, path):
    metadata = {"Date": None} if path.lower().endswith(".svg") else {"Software": None}
    fig.savefig(path, metadata=metadata, dpi=110, bbox_inches="tight")
    report_common._plt.close(fig)


def colours(backends):
    tab = ["tab:gray", "tab:blue", "tab:red", "tab:purple", "tab:green", "tab:orange",
           "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    fixed = {b: tab[i] for i, b in enumerate(BACKEND_ORDER)}
    out, extra = {}, iter(tab[len(BACKEND_ORDER):])
    for b in backends:
        out[b] = fixed.get(b) or next(extra, "black")
    return out


MARKERS = {"naive": "o", "eigen": "s", "openblas": "^", "blis": "v", "hwy_static": "D",
           "hwy_dynamic": "P"}


def plot_speedups(path, series, sizes, colour_of_size):
    """series: [(backend, [(n, speedup)])]: box per backend, points coloured by size."""
    plt = report_common.load_pyplot("rosetta-atlas")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.25 * len(series) + 2.5), 4.6))
    rng = random.Random(42)
    data = [[s for _, s in pts] for _, pts in series]
    ax.boxplot(data, positions=list(range(len(series))), widths=0.6, showfliers=False,
               whis=(0, 100), medianprops={"color": "black"},
               boxprops={"color": "0.4"}, whiskerprops={"color": "0.6"}, capprops={"color": "0.6"})
    for n in sizes:
        xs, ys = [], []
        for i, (_, pts) in enumerate(series):
            for m, s in pts:
                if m == n:
                    xs.append(i + rng.uniform(-0.22, 0.22))
                    ys.append(s)
        ax.scatter(xs, ys, s=12, alpha=0.75, color=colour_of_size[n], label=f"n = {fmt_n(n)}",
                   zorder=3, linewidths=0)
    ax.axhline(1.0, color="tab:red", linewidth=1, alpha=0.6)
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis, "×")
    ax.set_xticks(range(len(series)))
    ax.set_xticklabels([f"{b}\n({len(p)} cells)" for b, p in series])
    ax.set_ylabel("naive median / backend median")
    ax.set_title("speed-up over naive per (kernel, n); box: quartiles, whiskers: range")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="points")
    _save(fig, path)


def plot_win_share(path, cats, backends, shares, colour):
    """cats: x labels; shares[b][i]: win share of backend b in category i (0..1)."""
    plt = report_common.load_pyplot("rosetta-atlas")
    fig, ax = plt.subplots(figsize=(max(5.5, 1.1 * len(cats) + 3), 4.3))
    bottom = [0.0] * len(cats)
    for b in backends:
        vals = [100 * v for v in shares[b]]
        ax.bar(range(len(cats)), vals, bottom=bottom, color=colour[b], label=b, width=0.65,
               edgecolor="white", linewidth=0.5)
        for i, v in enumerate(vals):
            if v >= 6:
                ax.text(i, bottom[i] + v / 2, f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="white")
        bottom = [x + v for x, v in zip(bottom, vals)]
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of the win credit [%]")
    ax.set_title("win share per backend (ties within the band split)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), reverse=True) \
        if _legend_has_reverse() else ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)


def _legend_has_reverse():
    import matplotlib
    try:
        major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (3, 7)


def plot_bandwidth(path, kernels, backends, points, lines, colour, title):
    """points[b]: [(kernel index, share %, cache_resident)]; lines: [(x %, label, style)]."""
    plt = report_common.load_pyplot("rosetta-atlas")
    fig, ax = plt.subplots(figsize=(8.5, 0.24 * len(kernels) + 1.8))
    for b in backends:
        pts = points.get(b, [])
        if not pts:
            continue
        full = [(x, i) for i, x, res in pts if not res]
        hollow = [(x, i) for i, x, res in pts if res]
        mk = MARKERS.get(b, "o")
        if full:
            ax.scatter([x for x, _ in full], [i for _, i in full], marker=mk, s=22,
                       color=colour[b], label=b, alpha=0.85, zorder=3)
        if hollow:
            ax.scatter([x for x, _ in hollow], [i for _, i in hollow], marker=mk, s=22,
                       facecolors="none", edgecolors=colour[b], zorder=3,
                       label=None if full else b)
    for x, label, style in lines:
        ax.axvline(x, color="0.3", linestyle=style, linewidth=1)
        ax.text(x, -0.9, f" {label}", rotation=90, va="top", ha="right", fontsize=7, color="0.3")
    ax.set_yticks(range(len(kernels)))
    ax.set_yticklabels(kernels, fontsize=8)
    ax.set_ylim(len(kernels) - 0.5, -1.0)
    ax.set_xlim(left=0)
    ax.set_xlabel("achieved GB/s as % of the 1-thread STREAM triad (hollow: cache-resident)")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    _save(fig, path)


def plot_gflops(path, panels, backends, colour, peak):
    """panels: [(kernel, [n], {n: shape}, {backend: [(n, gflops)]})]."""
    plt = report_common.load_pyplot("rosetta-atlas")
    cols = 2 if len(panels) > 1 else 1
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (k, ns, shapes, series) in zip(axes.flat, panels):
        for b in backends:
            pts = sorted(series.get(b, []))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=MARKERS.get(b, "o"),
                        markersize=4, color=colour[b], label=b)
        if peak:
            ax.axhline(peak, color="tab:red", linestyle="--", linewidth=1)
            ax.text(ns[0], peak, " FMA peak", va="bottom", fontsize=7, color="tab:red")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns)
        ax.set_xticklabels([f"{fmt_n(n)}\n{shapes.get(n, '')}" for n in ns], fontsize=7)
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
        ax.set_ylabel("GFLOPS")
        ax.set_title(f"{k}")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("compute-bound kernels: GFLOPS vs n (one thread)")
    _save(fig, path)


def make_plots(page, img_dir, fmt):
    try:
        report_common.load_pyplot("rosetta-atlas")
    except ImportError as e:
        print(f"atlas_report: matplotlib is not importable by {sys.executable} ({e})",
              file=sys.stderr)
        return "matplotlib is not installed for the Python that ran this script"
    a = page.a
    os.makedirs(img_dir, exist_ok=True)
    colour = colours(a.backends)
    cmap = report_common._plt.get_cmap("viridis")
    size_colour = {n: cmap(i / max(1, len(a.sizes) - 1) * 0.9) for i, n in enumerate(a.sizes)}
    jobs = []

    series = [(b, [(c.n, c.speedup[b]) for c in a.cells.values() if b in c.speedup])
              for b in a.backends if b != "naive"]
    series = [s for s in series if s[1]]
    if series:
        jobs.append(("speedup", f"speedup_over_naive.{fmt}", "speed-up over naive",
                     "Speed-up over naive per backend: one point per (kernel, n), coloured by "
                     "n; box = quartiles, whiskers = full range; log scale; red line = naive.",
                     plot_speedups, (series, a.sizes, size_colour)))

    cats, shares = [], {b: [] for b in a.backends}
    groups = [(fmt_n(n), a.cells_at(n)) for n in a.sizes]
    if len(a.sizes) > 1:
        groups.append(("all", a.cells_at()))
    for label, cs in groups:
        cats.append(f"n = {label}" if label != "all" else "all sizes")
        for b in a.backends:
            shares[b].append(sum(c.credit(b) for c in cs) / len(cs) if cs else 0.0)
    if cats:
        jobs.append(("wins", f"win_share.{fmt}", "win share per backend per size",
                     f"Share of the win credit per backend and size (a cell's win is split "
                     f"between backends within {page.tie_pct} of the fastest median).",
                     plot_win_share, (cats, a.backends, shares, colour)))

    n = a.dram_n
    mem = [k for k in a.kernels if a.bound_of(k) == "memory" and a.cell(k, n)]
    if mem and a.triad_1t:
        points = {}
        for i, k in enumerate(mem):
            for b, r in a.cell(k, n).rows.items():
                if r.gbps is not None:
                    points.setdefault(b, []).append((i, 100 * r.gbps / a.triad_1t,
                                                     r.cache_resident))
        lines = [(100.0, "triad 1T", "-")]
        if a.triad_2t:
            lines.append((100 * a.triad_2t / a.triad_1t, "triad 2T", "--"))
        if a.dram_1t:
            lines.append((100 * a.dram_1t / a.triad_1t, "DRAM ceiling 1T", ":"))
        head = page.dram_note()[0]
        jobs.append(("bandwidth", f"bandwidth_dram.{fmt}", "bandwidth share at the DRAM size",
                     f"Memory-bound kernels at {head}: achieved GB/s per backend as a share "
                     f"of the 1-thread STREAM triad ({sig(a.triad_1t)} GB/s); vertical lines: "
                     "triad with 1 and 2 threads and the one-thread DRAM ceiling.",
                     plot_bandwidth, (mem, a.backends, points, lines, colour,
                                      f"memory-bound kernels at n = {fmt_n(n)}")))

    panels = []
    for k in compute_kernels(a):
        cs = a.cells_of(k)
        ser = {}
        for c in cs:
            for b, r in c.rows.items():
                if r.gflops:
                    ser.setdefault(b, []).append((c.n, r.gflops))
        if ser:
            panels.append((k, [c.n for c in cs], {c.n: c.best.shape for c in cs}, ser))
    if panels:
        jobs.append(("gflops", f"gflops_compute.{fmt}", "GFLOPS vs size, compute-bound kernels",
                     "GFLOPS vs n for the compute-bound kernels (gemm first), one line per "
                     f"backend; dashed: the {sig(a.peak)} GFLOPS FMA peak of one core.",
                     plot_gflops, (panels, a.backends, colour, a.peak)))

    for key, name, alt, caption, fn, fargs in jobs:
        path = os.path.join(img_dir, name)
        try:
            fn(path, *fargs)
            page.images[key] = (name, alt, caption)
        except Exception as e:  # one broken figure must not cost the page
            print(f"atlas_report: plot {name} failed: {type(e).__name__}: {e}", file=sys.stderr)
    return None


# --- main -------------------------------------------------------------------------------------
def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default="benchmarks/atlas.json",
                    help="rosetta-atlas output (default: %(default)s)")
    ap.add_argument("--out", default="docs/kernel-atlas.md",
                    help="the Markdown page (default: %(default)s)")
    ap.add_argument("--img-dir", default="docs/atlas-img",
                    help="directory for the plots (default: %(default)s)")
    ap.add_argument("--img-format", choices=("svg", "png"), default="svg")
    ap.add_argument("--tie", type=float, default=0.02,
                    help="relative tie band for wins (default 0.02 = 2 %%)")
    ap.add_argument("--no-plots", action="store_true", help="write the page without plots")
    args = ap.parse_args(argv[1:])
    if not 0 <= args.tie < 1:
        ap.error("--tie must be in [0, 1)")

    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        if (os.access(SYSTEM_PYTHON, os.X_OK) and not os.environ.get(REEXEC_ENV)
                and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
            os.environ[REEXEC_ENV] = "1"
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + argv[1:])

    atlas = Atlas(args.json, args.tie)
    if atlas.error:
        print(f"atlas_report: {atlas.error}", file=sys.stderr)
        return 1
    if not atlas.cells:
        print(f"atlas_report: {args.json} has no usable results", file=sys.stderr)
        return 1

    page = Page(atlas, args.tie)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    img_dir = os.path.abspath(args.img_dir)
    if args.no_plots:
        page.plot_note = "`--no-plots` was given"
    else:
        note = make_plots(page, img_dir, args.img_format)
        if note:
            page.plot_note = (note + "; install Debian's `python3-matplotlib` (and run with "
                              f"`{SYSTEM_PYTHON}`) to get them")
            print(f"atlas_report: no plots: {page.plot_note}", file=sys.stderr)

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch
           and epoch.isdigit() else datetime.datetime.now(datetime.timezone.utc))
    script = os.path.relpath(os.path.abspath(__file__))
    command = " ".join(shlex.quote(x) for x in ["python3", script] + argv[1:])
    page.rel_img = os.path.relpath(img_dir, out_dir).replace(os.sep, "/")
    page.header(command, now.strftime("%Y-%m-%d %H:%M UTC"))
    page.findings()
    page.wins()
    page.speedups()
    page.domains()
    page.crossovers()
    page.bandwidth()
    page.reproduce(os.path.relpath(os.path.abspath(args.json)).replace(os.sep, "/"))
    page.insert_toc()

    text = "\n".join(page.lines).rstrip("\n") + "\n"
    try:
        os.makedirs(out_dir, exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    except OSError as e:
        print(f"atlas_report: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"atlas_report: wrote {args.out} ({len(atlas.cells)} cells, {len(atlas.rows)} rows"
          + (f", {len(page.images)} plot(s) in {args.img_dir})" if page.images
             else ", no plots)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
