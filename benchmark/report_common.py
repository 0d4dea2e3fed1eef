"""Helpers shared by the report scripts (report.py, report_plots.py, atlas_report.py):
reading values out of the JSON results, Markdown cells, and the matplotlib set-up."""

import math

_plt = None


def num(x):
    """x as a finite float, or None (bools, strings, NaN, missing)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def dig(d, *path):
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def code(s):
    return f"`{s}`"


def cell(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def load_pyplot(salt):
    """pyplot on the Agg backend with reproducible SVGs (fixed hash salt); ImportError if
    matplotlib is missing."""
    global _plt
    if _plt is None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        plt.rcParams.update({"svg.hashsalt": salt, "font.size": 9,
                             "axes.titlesize": 10, "legend.fontsize": 8})
        _plt = plt
    return _plt


def plain_log_ticks(axis, suffix=""):
    """Log-axis tick labels as plain numbers (0.5, 1, 2) instead of 2×10⁰."""
    from matplotlib.ticker import FuncFormatter
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}{suffix}"))

    def minor(v, _pos):
        if v <= 0:
            return ""
        mantissa = v / 10 ** math.floor(math.log10(v) + 1e-9)
        return f"{v:g}{suffix}" if round(mantissa, 6) in (2.0, 5.0) else ""
    axis.set_minor_formatter(FuncFormatter(minor))
