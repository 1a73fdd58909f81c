"""Training curves as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_history(history: list[dict[str, Any]], path: str | Path, title: str = "",
                 metric: str | None = None) -> Path:
    """What a person reads off a training run: the training loss per epoch, and one panel
    per family of validation metrics (recall, NDCG, ...; one line per cut-off K), the
    selection ``metric``'s panel first, its best epoch marked in every panel.

    Args:
        history: the run's history (``rec.history``): per epoch ``loss``, and ``valid``
            metrics on the epochs that were validated, ``best`` on the selected one.
        path: the PNG to write.
        title: a title over the panels.
        metric: the selection metric (``eval.metric``, e.g. ``ndcg@20``); default: the
            first validation metric.
    """
    import matplotlib.pyplot as plt

    fig = history_figure(history, title=title, metric=metric)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def history_figure(history: list[dict[str, Any]], title: str = "",
                   metric: str | None = None) -> Any:
    """The ``matplotlib`` figure :func:`plot_history` writes (panels as described there)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    val_keys = sorted({k for h in history for k in h.get("valid", {})})
    families: dict[str, list[str]] = {}
    for key in val_keys:
        families.setdefault(key.partition("@")[0], []).append(key)
    metric = metric if metric in val_keys else (val_keys[0] if val_keys else None)
    first = metric.partition("@")[0] if metric else None
    usual = ["recall", "ndcg", "precision", "hit", "mrr", "f1", "coverage", "auc"]
    order = sorted(families, key=lambda f: (f != first, usual.index(f) if f in usual else 99, f))
    n = 1 + len(order)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    flat = list(axes.flat)
    epochs = [h["epoch"] for h in history]
    ax = flat[0]
    ax.plot(epochs, [h["loss"] for h in history], color="black", label="total")
    parts = sorted({k for h in history for k in h.get("parts", {})
                    if isinstance(h["parts"].get(k), int | float)})
    for k in parts:
        pts = [(h["epoch"], h["parts"][k]) for h in history if k in h.get("parts", {})]
        ax.plot(*zip(*pts, strict=True), linewidth=1, alpha=0.7, label=k)
    ax.set_title("training loss", fontsize=9)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    if parts:
        ax.legend(fontsize=7, loc="upper right")
    best = [h for h in history if h.get("best")]
    best_epoch = best[-1]["epoch"] if best else None
    for ax, family in zip(flat[1:], order, strict=False):
        for key in families[family]:
            pts = [(h["epoch"], h["valid"][key]) for h in history if key in h.get("valid", {})]
            style = {"linewidth": 2.2} if key == metric else {"linewidth": 1.2}
            ax.plot(*zip(*pts, strict=True), marker=".", label=f"@{key.partition('@')[2]}",
                    **style)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
            if metric in families[family]:
                value = best[-1]["valid"][metric]
                right = best_epoch > (epochs[0] + epochs[-1]) / 2  # keep the text inside
                ax.annotate(f"best {metric} {value:.4f}\n(epoch {best_epoch})",
                            (best_epoch, value), textcoords="offset points",
                            xytext=(-8 if right else 8, -30), ha="right" if right else "left",
                            fontsize=7, arrowprops={"arrowstyle": "-", "color": "grey"})
        ax.set_title(f"validation {family}" + (" (selection metric)" if family == first
                                                else ""), fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        # the legend sits outside the lines' way: below the axes
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22),
                  ncol=len(families[family]), frameon=False)
    for ax in flat[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
