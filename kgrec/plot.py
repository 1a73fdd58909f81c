"""Training curves as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_history(history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss per epoch (left) and validation metrics per evaluation (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["loss"] for h in history], color="tab:red")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_loss.grid(alpha=0.3)
    val_keys = sorted({k for h in history for k in h.get("valid", {})})
    for key in val_keys:
        pts = [(h["epoch"], h["valid"][key]) for h in history if key in h.get("valid", {})]
        if pts:
            ax_val.plot(*zip(*pts, strict=True), marker=".", label=key)
    best = [h["epoch"] for h in history if h.get("best")]
    if best:
        ax_val.axvline(best[-1], color="grey", linestyle="--", label=f"best (epoch {best[-1]})")
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("validation")
    ax_val.grid(alpha=0.3)
    if val_keys:
        ax_val.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
