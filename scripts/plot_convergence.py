#!/usr/bin/env python3
"""Plots the loss curve the `convergence` example writes.

    python3 scripts/plot_convergence.py CSV OUT

CSV has the header step,ce,aux,total,grad_norm,lr (one row per step). OUT ends in .svg or
.png. Top panel: cross-entropy and total loss, log scale; bottom panel: gradient norm
(log scale) and learning rate. Uses matplotlib's non-interactive Agg backend, so no display
is needed.

Exit status: 0 written; 1 unreadable or malformed CSV, or the plot could not be written;
2 bad command line; 3 matplotlib is not installed (Debian: apt-get install python3-matplotlib).
"""

import csv
import math
import os
import sys

COLUMNS = ("step", "ce", "aux", "total", "grad_norm", "lr")
FORMATS = (".svg", ".png")
SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian's python3-matplotlib is importable


def fail(code, message):
    print(f"plot_convergence: {message}", file=sys.stderr)
    sys.exit(code)


def read_curve(path):
    """Returns {column: [values]} for the CSV at path (exits 1 on any problem)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                fail(1, f"{path}: missing column(s) {', '.join(missing)} "
                        f"(expected header {','.join(COLUMNS)})")
            curve = {c: [] for c in COLUMNS}
            for line, row in enumerate(reader, start=2):
                for c in COLUMNS:
                    try:
                        curve[c].append(float(row[c]))
                    except (TypeError, ValueError):
                        fail(1, f"{path}:{line}: column '{c}' is not a number: {row[c]!r}")
    except OSError as e:
        fail(1, f"cannot read {path}: {e.strerror}")
    if not curve["step"]:
        fail(1, f"{path}: no data rows")
    return curve


def positive(values):
    """Log axes cannot show zeros or negatives: replace them by NaN (a gap in the line)."""
    return [v if v > 0 and math.isfinite(v) else math.nan for v in values]


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 3:
        fail(2, "usage: plot_convergence.py CSV OUT(.svg|.png)")
    csv_path, out_path = argv[1], argv[2]
    if not out_path.lower().endswith(FORMATS):
        fail(2, f"output '{out_path}' must end in {' or '.join(FORMATS)}")

    curve = read_curve(csv_path)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        # `python3` may be another interpreter (pyenv, a virtualenv) than the one Debian's
        # package installs into: try the system interpreter once before giving up.
        if (os.access(SYSTEM_PYTHON, os.X_OK) and not os.environ.get("PLOT_CONVERGENCE_REEXEC")
                and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
            os.environ["PLOT_CONVERGENCE_REEXEC"] = "1"
            sys.stdout.flush()
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + argv[1:])
        fail(3, f"matplotlib is not installed for {sys.executable} (Debian: apt-get install "
                "python3-matplotlib); no plot written")

    steps = curve["step"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})
    top.plot(steps, positive(curve["ce"]), label="cross-entropy", linewidth=1.2)
    top.plot(steps, positive(curve["total"]), label="total (ce + aux)", linewidth=1.2)
    top.plot(steps, positive(curve["aux"]), label="aux (load balancing)", linewidth=1,
             linestyle="--")
    top.set_yscale("log")
    top.set_ylabel("loss")
    top.grid(True, which="both", alpha=0.3)
    top.legend()
    last = len(steps) - 1
    top.set_title(f"convergence: final step {steps[last]:.0f}, ce {curve['ce'][last]:.3g}, "
                  f"total {curve['total'][last]:.4g}")

    bottom.plot(steps, positive(curve["grad_norm"]), color="tab:red", linewidth=1,
                label="gradient norm (before clipping)")
    bottom.set_yscale("log")
    bottom.set_ylabel("|g|")
    bottom.set_xlabel("step")
    bottom.grid(True, which="both", alpha=0.3)
    lr_axis = bottom.twinx()
    lr_axis.plot(steps, curve["lr"], color="tab:gray", linewidth=1, label="learning rate")
    lr_axis.set_ylabel("lr")
    lines = bottom.get_lines() + lr_axis.get_lines()
    bottom.legend(lines, [ln.get_label() for ln in lines], loc="upper right")

    fig.tight_layout()
    try:
        fig.savefig(out_path)
    except OSError as e:
        fail(1, f"cannot write {out_path}: {e.strerror}")
    print(f"plot_convergence: wrote {out_path} ({len(steps)} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
