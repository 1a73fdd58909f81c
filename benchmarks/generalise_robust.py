"""Robustness to noise: one of the generalisation benchmarks.

Robustness (``--robust``): ``hgnn``'s joint GNN (``model.hgnn.ranking: joint``, the model
the adversary perturbs) on the per-user random 80/10/10 split, trained on noisy
data and tested on the clean test set: (a) 10/20/30% of the training positives replaced by
random pairs, (b) the relations of 10/20/30% of the KG triples shuffled; each with and
without adversarial training (``train.adv_eps`` 0.1, FGSM, weight 1); ``--loss softmax``
trains them all with the sampled-softmax loss instead of BPR. Runs write
``benchmarks/results/runs/robust-<dataset>-<noise>-<share>-<adv|plain>[-softmax]-<seed>.json``.
``--adv-eps 0.25 0.5 ...`` runs the adversarial variant at other radii (files
``...-adv<eps>[-softmax]-<seed>.json``) and adds a radius table to the summary.

Each run is its own process; finished runs are not redone. Summary:
``benchmarks/results/generalise.md``.

    python benchmarks/generalise.py --robust --datasets lastfm-hetrec-kg
    python benchmarks/generalise_robust.py --one lastfm-hetrec-kg inter 0.2 0.1 0 bpr --out F.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import RUNS, Runs, one_thread, write_run
from generalise_common import Panel, one_main, paired, series

ADV_EPS = 0.1  # the radius of the main robustness table
ADV = {"train": {"adv_weight": 1.0, "adv_steps": 1}}
NOISE = [("none", 0.0), ("inter", 0.1), ("inter", 0.2), ("inter", 0.3), ("kg", 0.1),
         ("kg", 0.2), ("kg", 0.3)]


ATTACK_EPS = [0.05, 0.1, 0.25, 0.5]
ONE = ("DATASET", "NOISE", "SHARE", "ADV_EPS", "SEED", "LOSS")  # the arguments of one run


def run_robust(dataset: str, noise: str, share: float, adv_eps: float, seed: int, out: Path,
               loss: str = "bpr") -> None:
    """One robustness run; ``adv_eps`` 0 trains without adversarial training."""
    import kgrec
    from kgrec.data.noise import interaction_noise, kg_noise

    one_thread()

    start = time.perf_counter()
    split = kgrec.split(kgrec.load_dataset(dataset), "random", seed=seed)
    if noise == "inter":
        split = interaction_noise(split, share, seed=seed)
    elif noise == "kg":
        split = kg_noise(split, share, seed=seed)
    train = {"seed": seed, "device": "cpu", "lr": 5e-3, "epochs": 500, "loss": loss}
    if adv_eps:
        train.update(ADV["train"], adv_eps=adv_eps)
    cfg = kgrec.Config(data={"dataset": dataset, "seed": seed},
                       model={"name": "hgnn", "hgnn": {"ranking": "joint"}}, train=train)
    rec = kgrec.train(split, cfg, progress=False)
    test = kgrec.evaluate(rec, split.test, k=[20])
    attacked = {}
    if noise == "none":  # (c): the clean model's inputs attacked at test time
        from kgrec.train import EmbeddingScorer, model_from
        from kgrec.train.adversarial import attacked_outputs

        model = model_from(rec, split)
        for eps in ATTACK_EPS:
            u, i = attacked_outputs(model, split, eps, seed=seed)
            scores = kgrec.evaluate(EmbeddingScorer(u, i), split.test, k=[20])
            attacked[str(eps)] = scores["recall@20"]
    doc = {"dataset": dataset, "noise": noise, "share": share, "adv": adv_eps > 0,
           "adv_eps": adv_eps, "seed": seed,
           "loss": loss, "attacked_recall@20": attacked,
           "recall@20": test["recall@20"], "ndcg@20": test["ndcg@20"],
           "epochs": len(rec.history),
           "sec_per_epoch": statistics.median(h["seconds"] for h in rec.history),
           "wall_s": time.perf_counter() - start}
    write_run(out, doc, cfg, split)


def one(args: list[str], out: Path) -> None:
    """One run from its command-line arguments (:data:`ONE`)."""
    dataset, noise, share, adv_eps, seed, loss = args
    run_robust(dataset, noise, float(share), float(adv_eps), int(seed), out, loss)


def jobs(a: argparse.Namespace, dataset: str, seed: int) -> list[tuple[Path, list[str], str]]:
    """The runs of ``dataset`` and ``seed`` that ``generalise.py --robust`` asks for (its
    ``--noise``, ``--adv``, ``--adv-eps`` and ``--loss``): ``(out file, args of one run,
    label)``."""
    tag = "" if a.loss == "bpr" else f"-{a.loss}"
    eps = [0.0] * ("plain" in a.adv) + a.adv_eps * ("adv" in a.adv)
    name = {e: "plain" if not e else "adv" if e == ADV_EPS else f"adv{e:g}" for e in eps}
    return [(RUNS / f"robust-{dataset}-{noise}-{share}-{name[e]}{tag}-{seed}.json",
             ["--one", dataset, noise, str(share), str(e), str(seed), a.loss],
             f"robust {dataset} {noise} {share} {name[e]}{tag} seed {seed}")
            for noise, share in a.noise for e in eps]


def _loss(run: dict) -> str:
    return run.get("loss", "bpr")  # runs from before train.loss existed were BPR


def _adv_eps(run: dict) -> float:
    return run.get("adv_eps", ADV_EPS if run["adv"] else 0.0)  # older runs: 0.1 or off


def _recalls(rs: list[dict], noise: str, share: float, eps: float) -> dict[int, float]:
    """Test Recall@20 by seed of the runs at this noise and adversarial radius (0 = plain)."""
    return {r["seed"]: r["recall@20"] for r in rs
            if r["noise"] == noise and r["share"] == share and _adv_eps(r) == eps}


def _drop(noisy: dict[int, float], clean: dict[int, float]) -> str:
    """Relative change of the mean Recall@20 against clean training (paired seeds)."""
    n, c, k = paired(noisy, clean)
    return f"{n / c - 1:+.1%}" if k and c else "–"


def _mean_cell(xs: dict[int, float]) -> str:
    return f"{statistics.mean(xs.values()):.4f}" if xs else "–"


def _robust_radii(rs: list[dict]) -> list[str]:
    """A table of clean and noisy Recall@20 for every adversarial radius that was run."""
    radii = sorted({_adv_eps(r) for r in rs})
    shares = sorted({(r["noise"], r["share"]) for r in rs if r["noise"] != "none"})
    if len(radii) <= 2 or not shares:
        return []
    lines = ["Adversarial radius (`train.adv_eps`; 0 = plain): Recall@20 (seeds) clean and "
             "under noise, drop against the same radius trained clean on the same seeds:", "",
             "| adv_eps | clean | " + " | ".join(f"{n} {s:.0%}" for n, s in shares) + " |",
             "|---:|---:|" + "---:|" * len(shares)]
    for eps in radii:
        clean = _recalls(rs, "none", 0.0, eps)
        cells = [f"{_mean_cell(clean)} ({len(clean)})" if clean else "–"]
        for noise, share in shares:
            xs = _recalls(rs, noise, share, eps)
            drop = _drop(xs, clean)
            cells.append("–" if not xs else f"{_mean_cell(xs)} ({len(xs)})"
                         + ("" if drop == "–" else f", {drop}"))
        lines.append(f"| {eps:g} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def summarise(all_runs: Runs) -> list[str]:
    """The robustness tables of ``generalise.md``: per dataset and loss."""
    runs = all_runs.glob("robust-*.json")
    lines: list[str] = []
    for dataset, loss in sorted({(r["dataset"], _loss(r)) for r in runs},
                                key=lambda x: (x[0], x[1] != "bpr")):
        rs = [r for r in runs if r["dataset"] == dataset and _loss(r) == loss]
        what = "hgnn" if loss == "bpr" else f"hgnn with the {loss} loss"
        lines += [f"## Robustness on {dataset}: {what} trained on noisy data, clean test set",
                  "",
                  f"Adversarial = `train.adv_eps={ADV_EPS:g}` (FGSM on the layer-0 inputs, "
                  "weight 1). "
                  "Drop = relative loss of Recall@20 against the same variant trained on "
                  "clean data, over the same seeds. Goal: adversarial training halves the "
                  "drop at 20% noise, losing at most 2% clean Recall@20.", "",
                  "| noise | share | Recall@20 plain | Recall@20 adversarial | drop plain | "
                  "drop adversarial | seeds (plain / adversarial) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        radius = {False: 0.0, True: ADV_EPS}
        clean = {a: _recalls(rs, "none", 0.0, radius[a]) for a in (False, True)}
        for noise, share in NOISE:
            vals = {a: _recalls(rs, noise, share, radius[a]) for a in (False, True)}
            if not any(vals.values()):
                continue
            cells = [_mean_cell(vals[a]) for a in (False, True)]
            cells += [_drop(vals[a], clean[a]) for a in (False, True)]
            n = {a: len(vals[a]) for a in (False, True)}
            seeds = f"{n[False]}" if n[False] == n[True] else f"{n[False]} / {n[True]}"
            lines.append(f"| {noise} | {share:.0%} | " + " | ".join(cells) + f" | {seeds} |")
        lines.append("")
        lines += _robust_radii(rs)
        att = {a: [r for r in rs if r["noise"] == "none" and _adv_eps(r) == radius[a]
                   and r.get("attacked_recall@20")] for a in (False, True)}
        if att[False] or att[True]:
            lines += ["Test-time attack on the clean models (`kgrec evaluate --perturb EPS`: "
                      "FGSM on the layer-0 inputs against the training ranking loss):", "",
                      "| L2 radius | Recall@20 plain | Recall@20 adversarial | drop plain | "
                      "drop adversarial |", "|---:|---:|---:|---:|---:|"]
            for eps in ATTACK_EPS:
                hit = {a: {r["seed"]: r["attacked_recall@20"][str(eps)] for r in att[a]
                           if str(eps) in r["attacked_recall@20"]} for a in (False, True)}
                cells = [_mean_cell(hit[a]) for a in (False, True)]
                cells += [_drop(hit[a], clean[a]) for a in (False, True)]
                lines.append(f"| {eps} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines


def panels(runs: Runs) -> list[Panel]:
    """The plot's panels, per loss: Recall@20 against the noise share (interaction, KG) and
    against the radius of a test-time attack, plain and adversarial."""
    robust = runs.glob("robust-*.json")
    out: list[Panel] = []
    for loss in ("softmax", "bpr"):
        rows = [r for r in robust if _loss(r) == loss]
        for noise in ("inter", "kg"):
            lines = []
            for name, eps in (("plain", 0.0), ("adversarial", ADV_EPS)):
                sel = [r for r in rows if _adv_eps(r) == eps
                       and (r["noise"] == noise or r["noise"] == "none")]
                lines.append((name, series(sel, "share", [0.0, 0.1, 0.2, 0.3])))
            if sum(len(s[1][0]) for s in lines) > 2:
                out.append((f"Last.FM, {loss}: {noise} noise", "noise share", lines))
        att = []
        for name, eps in (("plain", 0.0), ("adversarial", ADV_EPS)):
            sel = [r for r in rows if r["noise"] == "none" and _adv_eps(r) == eps
                   and r.get("attacked_recall@20")]
            pts = [{"recall@20": r["recall@20"], "eps": 0.0} for r in sel] + [
                {"recall@20": v, "eps": float(e)} for r in sel
                for e, v in r["attacked_recall@20"].items()]
            att.append((name, series(pts, "eps", [0.0, *ATTACK_EPS])))
        if any(s[1][0] for s in att):
            out.append((f"Last.FM, {loss}: test-time attack", "L2 radius", att))
    return out


if __name__ == "__main__":
    one_main(__doc__, ONE, one)
