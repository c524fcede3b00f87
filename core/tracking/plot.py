"""Plot of a tracker parameter search: a heatmap for two parameters, a line for one, the
ranked combinations otherwise."""
from __future__ import annotations

from pathlib import Path

from det.core.fileio import atomic_write


def plot_search(names: list[str], rows: list[dict], metric: str, path: str | Path) -> Path:
    """Write a PNG/PDF (by extension) of `metric` over the searched parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    df = pd.DataFrame(rows)
    short = {n: n.removeprefix("tracker.") for n in names}
    if len(names) == 2:
        table = df.pivot_table(index=names[0], columns=names[1], values=metric, aggfunc="max")
        fig, ax = plt.subplots(figsize=(1.2 * len(table.columns) + 3, 0.6 * len(table.index) + 2.5))
        sns.heatmap(table, annot=True, fmt=".3f", cmap="viridis", ax=ax, cbar_kws={"label": metric})
        ax.set_xlabel(short[names[1]])
        ax.set_ylabel(short[names[0]])
    elif len(names) == 1:
        df = df.sort_values(names[0])
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(df[names[0]].astype(str), df[metric], marker="o")
        ax.set_xlabel(short[names[0]])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    else:
        top = df.head(30)
        labels = [", ".join(f"{short[n]}={r[n]}" for n in names) or "preset" for _, r in top.iterrows()]
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(top) + 1.5))
        ax.barh(range(len(top)), top[metric], color="tab:blue")
        ax.set_yticks(range(len(top)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(metric)
    ax.set_title(f"tracker search: {metric} ({len(rows)} combinations)")
    fig.tight_layout()
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=120))
    plt.close(fig)
    return path
