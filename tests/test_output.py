"""What a person reads: training curves, and progress lines when output is not a terminal."""

from __future__ import annotations

import io

import matplotlib.colors as mcolors

from kgrec.plot import history_figure, plot_history
from kgrec.progress import LineProgress, progress


def _history() -> list[dict]:
    out = []
    for epoch in range(1, 21):
        h = {"epoch": epoch, "loss": 1.0 / epoch, "parts": {"all": 0.8 / epoch, "kg": 0.2}}
        if epoch % 5 == 0:
            h["valid"] = {f"{m}@{k}": 0.01 * epoch + k / 1000
                          for m in ("recall", "ndcg", "precision", "hit", "f1", "mrr")
                          for k in (10, 20)}
            h["best"] = epoch == 15
        out.append(h)
    return out


def test_curves_show_loss_and_one_panel_per_metric_family(tmp_path):
    """curves.png had 13 metrics on one panel with repeated colours: now the loss, then one
    panel per family (the selection metric's first), its best epoch marked."""
    fig = history_figure(_history(), metric="ndcg@20")
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles[:3] == ["training loss", "validation ndcg (selection metric)",
                          "validation recall"]
    assert len(titles) == 7  # loss + 6 families
    for ax in fig.axes[1:7]:
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() != "--"]
        assert [ln.get_label() for ln in lines] == ["@10", "@20"]
        colours = [mcolors.to_hex(ln.get_color()) for ln in lines]
        assert len(set(colours)) == len(colours)  # no colour twice in a panel
        marks = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert marks and marks[0].get_xdata()[0] == 15  # the best epoch, in every panel
    notes = [t.get_text() for t in fig.axes[1].texts]
    assert any("best ndcg@20" in n and "epoch 15" in n for n in notes)
    assert plot_history(_history(), tmp_path / "c.png").stat().st_size > 10_000


def test_progress_prints_lines_with_counts_and_time_left_when_not_a_terminal():
    stream = io.StringIO()
    bar = progress(1000, "load INTERACTED", "rows", stream=stream)
    assert isinstance(bar, LineProgress)  # not a terminal: lines, not a bar
    bar.every = 0.0
    with bar:
        bar.update(250)
        bar.set_postfix(loss="0.41")
        bar.update(250)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("load INTERACTED: 250/1,000 rows (25%), ")
    assert "s left" in lines[0]
    assert lines[1].startswith("load INTERACTED: 500/1,000 rows (50%)") and "loss 0.41" in lines[1]
    assert len(lines) == 2  # the close prints nothing new: the last count was printed
    quiet = io.StringIO()
    with progress(10, "x", stream=quiet, enabled=False) as off:
        off.update(10)
    assert quiet.getvalue() == ""
