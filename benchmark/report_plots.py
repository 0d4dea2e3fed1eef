"""Plots for benchmark/report.py (matplotlib, Agg backend).

report.py prepares plain data (lists of points, every time in nanoseconds) and calls one
function per figure; each writes one file (the format follows the extension, .svg or .png)
and returns nothing. `load()` imports matplotlib and returns pyplot, or raises ImportError.
Error bars are the first and third quartiles of the timed trials.
"""

import math

import report_common
from report_common import plain_log_ticks as _plain_log_ticks

_plt = None

TIME_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))


def load():
    global _plt
    _plt = report_common.load_pyplot("rosetta-bench")
    return _plt


def _time_unit(values):
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    top = max(finite) if finite else 1.0
    for div, name in TIME_UNITS:
        if top >= div:
            return div, name
    return 1.0, "ns"


def _human(ns):
    div, unit = _time_unit([ns])
    return f"{ns / div:.3g} {unit}"


def _save(fig, path):
    metadata = {"Date": None} if path.lower().endswith(".svg") else {"Software": None}
    fig.tight_layout()
    fig.savefig(path, metadata=metadata, dpi=110)
    _plt.close(fig)


def _errorbar(ax, xs, meds, q1s, q3s, div, **kw):
    lo = [max(0.0, (m - q) / div) if m is not None and q is not None else 0.0
          for m, q in zip(meds, q1s)]
    hi = [max(0.0, (q - m) / div) if m is not None and q is not None else 0.0
          for m, q in zip(meds, q3s)]
    ys = [m / div if m is not None else math.nan for m in meds]
    ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, marker="o", markersize=4, linewidth=1.2, **kw)


def plot_scaling(path, title, xlabel, series):
    """series: [{'label', 'style': '-'|'--', 'points': [(x, median, q1, q3, tokens)]}].
    Left: median time per iteration; right: time per token (median / tokens)."""
    plt = load()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    div, unit = _time_unit([p[1] for s in series for p in s["points"]])
    per_tok = [p[1] / p[4] for s in series for p in s["points"] if p[4]]
    div_t, unit_t = _time_unit(per_tok)
    xs_all = sorted({p[0] for s in series for p in s["points"]})
    for s in series:
        pts = sorted(s["points"])
        xs = [p[0] for p in pts]
        _errorbar(left, xs, [p[1] for p in pts], [p[2] for p in pts], [p[3] for p in pts], div,
                  label=s["label"], linestyle=s.get("style", "-"))
        tok = [(p[0], p[1] / p[4], (p[2] or p[1]) / p[4], (p[3] or p[1]) / p[4])
               for p in pts if p[4]]
        if tok:
            _errorbar(right, [t[0] for t in tok], [t[1] for t in tok], [t[2] for t in tok],
                      [t[3] for t in tok], div_t, label=s["label"], linestyle=s.get("style", "-"))
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs_all)
        ax.set_xticklabels([str(int(x)) if float(x).is_integer() else str(x) for x in xs_all])
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    left.set_yscale("log")
    _plain_log_ticks(left.yaxis)
    left.set_ylabel(f"median time per iteration [{unit}]")
    left.set_title(title)
    right.set_ylabel(f"median time per token [{unit_t}]")
    right.set_title("time per token (flat = linear scaling)")
    right.set_ylim(bottom=0)
    left.legend()
    _save(fig, path)


def plot_parallel(path, series, cores=None):
    """series: [{'label', 'style', 'points': [(threads, speedup, lo, hi)]}]; adds the ideal
    line speed-up = threads and marks the number of logical cores."""
    plt = load()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    threads = sorted({p[0] for s in series for p in s["points"]})
    if threads:
        ax.plot(threads, threads, color="gray", linestyle=":", label="ideal (speed-up = T)")
    for s in series:
        pts = sorted(s["points"])
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        lo = [max(0.0, p[1] - p[2]) if p[2] is not None else 0.0 for p in pts]
        hi = [max(0.0, p[3] - p[1]) if p[3] is not None else 0.0 for p in pts]
        ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, marker="o", markersize=4,
                    linestyle=s.get("style", "-"), label=s["label"])
    if cores:
        ax.axvline(cores, color="tab:red", alpha=0.4, linewidth=1)
        ax.text(cores, ax.get_ylim()[1], f" {cores:g} logical cores", color="tab:red",
                va="top", fontsize=8)
    ax.set_xticks(threads)
    ax.set_xlabel("threads T")
    ax.set_ylabel("throughput speed-up  T·median(T1)/median(T)")
    ax.set_title("parallel speed-up (error bars: quartiles of median(T))")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_static_virtual(path, panels):
    """panels: [{'title', 'groups': [(label, (med, q1, q3) | None, (med, q1, q3) | None)]}]:
    grouped bars per policy, static vs virtual, log time axis."""
    plt = load()
    n = len(panels)
    width = max(6.0, 0.55 * max(len(p["groups"]) for p in panels) + 2)
    fig, axes = plt.subplots(n, 1, figsize=(width, 3.6 * n), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        groups = panel["groups"]
        div, unit = _time_unit([g[k][0] for g in groups for k in (1, 2) if g[k]])
        for k, (name, off, colour) in enumerate((("static", -0.2, "tab:blue"),
                                                 ("virtual", 0.2, "tab:orange"))):
            xs, ys, lo, hi = [], [], [], []
            for i, g in enumerate(groups):
                v = g[k + 1]
                if not v or v[0] is None:
                    continue
                xs.append(i + off)
                ys.append(v[0] / div)
                lo.append(max(0.0, (v[0] - (v[1] if v[1] is not None else v[0])) / div))
                hi.append(max(0.0, ((v[2] if v[2] is not None else v[0]) - v[0]) / div))
            ax.bar(xs, ys, width=0.4, color=colour, label=name,
                   yerr=[lo, hi], capsize=2, error_kw={"linewidth": 0.8})
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g[0] for g in groups], rotation=60, ha="right", fontsize=7)
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
        ax.set_ylabel(f"median [{unit}]")
        ax.set_title(panel["title"])
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_heatmap(path, panels):
    """panels: [{'title', 'rows': [backend], 'cols': [label], 'values': [[ns | None]]}]:
    colour = ratio to the panel's fastest cell (log scale), text = median and ratio."""
    plt = load()
    from matplotlib.colors import LogNorm
    n = len(panels)
    height = 0.55 * max(len(p["rows"]) for p in panels) + 2.2
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n + 0.8, height), squeeze=False)
    image = None
    top = 1.0
    for panel in panels:
        finite = [v for row in panel["values"] for v in row if v]
        if finite:
            top = max(top, max(finite) / min(finite))
    norm = LogNorm(vmin=1.0, vmax=max(top, 1.01))
    for ax, panel in zip(axes[0], panels):
        finite = [v for row in panel["values"] for v in row if v]
        best = min(finite) if finite else 1.0
        ratio = [[(v / best) if v else math.nan for v in row] for row in panel["values"]]
        image = ax.imshow(ratio, cmap="viridis_r", norm=norm, aspect="auto")
        for i, row in enumerate(panel["values"]):
            for j, v in enumerate(row):
                text = "—" if not v else f"{_human(v)}\n{v / best:.2f}×"
                r = ratio[i][j]
                dark = r == r and r > math.sqrt(norm.vmax)
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(panel["cols"])))
        ax.set_xticklabels(panel["cols"], fontsize=8)
        ax.set_yticks(range(len(panel["rows"])))
        ax.set_yticklabels(panel["rows"], fontsize=8)
        ax.set_title(panel["title"])
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes[0]), label="median / fastest cell", shrink=0.9)
        _plain_log_ticks(bar.ax.yaxis, "×")
    metadata = {"Date": None} if path.lower().endswith(".svg") else {"Software": None}
    fig.savefig(path, metadata=metadata, dpi=110, bbox_inches="tight")
    _plt.close(fig)
