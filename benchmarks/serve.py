"""Ranking speed against its floor, in one script: one user, 10,000 users, a whole evaluation,
a command's start, and an approximate index on a 1M-item catalogue.

The floor is what any ranking must spend with the same vectors: one matmul, the seen items
masked, one ``torch.topk`` (no id mapping, no tie handling, no metrics). Each part times
kgrec and its floor back to back in this process, on the same users, alternating, and gives
the ratio of medians:

- ``single``: ``rec.recommend([user], k=10)`` against the floor for that user (500 users);
- ``batch``: ``rec.recommend(10,000 users, k=10)`` against one floor call for them, time and
  peak memory (the process's peak RSS, reset before each call through
  ``/proc/self/clear_refs``);
- ``evaluate``: ``kgrec.evaluate(rec, split.test)`` against the floor ranking every test user
  (chunks of 1,024, exclusions masked, top 20);
- ``start``: ``kgrec recommend RUN --user X`` as a new process, against a script that imports
  torch, reads the same saved vectors and ids and ranks (median of 5 each);
- ``ann``: ``kgrec.recommender.ann`` on a 1M-item catalogue (the run's item vectors plus vectors
  drawn from a Gaussian fitted to them), recall@20 of the index against the exact top 20 and
  the speed-up per query, for each library installed (faiss, hnswlib, usearch), items lifted
  to a sphere (``kgrec.recommender.ann``), and hnswlib on the raw inner product too.

Goals (the real-time issue): single <= 1.3x, batch <= 1.2x time and memory, evaluate <=
1.3x, start <= 1.3x; ANN recall >= 0.98 at >= 10x. One JSON per part,
``benchmarks/results/runs/serve-<part>-<dataset>.json``; tables by ``report.py``
(``serve.md``).

    python benchmarks/serve.py --run runs/amazon-lightgcn
    python benchmarks/serve.py --run runs/amazon-lightgcn --parts single batch
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import RUNS, one_thread, write_run

PARTS = ("single", "batch", "evaluate", "start", "ann")


def _peak_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _rss_peak() -> int:
    """The process's peak resident memory since the last reset, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Floor:
    """One matmul, the seen items masked, one topk: the least a ranking costs."""

    def __init__(self, rec) -> None:
        import torch

        self.users, self.items = rec.user_embedding, rec.item_embedding
        self.indptr = rec.seen.indptr
        self.indices = torch.from_numpy(rec.seen.indices.astype("int64"))

    def rank(self, users, k: int):
        import numpy as np
        import torch

        scores = self.users[torch.from_numpy(users)] @ self.items.T
        starts, ends = self.indptr[users], self.indptr[users + 1]
        lens = ends - starts
        flat = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
        scores[torch.from_numpy(np.repeat(np.arange(len(users)), lens)),
               self.indices[torch.from_numpy(flat)]] = -torch.inf
        return torch.topk(scores, k, dim=1)


def _median_pair(fa, fb, reps: int) -> tuple[float, float]:
    ta, tb = [], []
    for r in range(reps):
        for f, t in ((fa, ta), (fb, tb)) if r % 2 == 0 else ((fb, tb), (fa, ta)):
            t0 = time.perf_counter()
            f(r)
            t.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def part_single(rec, args) -> dict:
    import numpy as np

    floor = Floor(rec)
    rng = np.random.default_rng(0)
    users = rng.choice(rec.num_users, 500, replace=False)
    ids = [rec.user_ids[u] for u in users]
    for r in range(20):  # warm-up: allocator, caches
        rec.recommend([ids[r]], k=10)
        floor.rank(users[r:r + 1], 10)
    ours, base = _median_pair(lambda r: rec.recommend([ids[r]], k=10),
                              lambda r: floor.rank(users[r:r + 1], 10), len(users))
    return {"kgrec_s": ours, "floor_s": base, "ratio": ours / base, "users": len(users),
            "k": 10}


def part_batch(rec, args) -> dict:
    import numpy as np

    floor = Floor(rec)
    rng = np.random.default_rng(1)
    n = min(10_000, rec.num_users)
    users = rng.choice(rec.num_users, n, replace=False)
    ids = [rec.user_ids[u] for u in users]
    times: dict[str, list[float]] = {"kgrec": [], "floor": []}
    peaks: dict[str, list[int]] = {"kgrec": [], "floor": []}
    for r in range(args.reps):
        order = (("kgrec", lambda: rec.recommend(ids, k=10)),
                 ("floor", lambda: floor.rank(users, 10)))
        for name, f in order if r % 2 == 0 else order[::-1]:
            _peak_reset()
            before = _rss()
            t0 = time.perf_counter()
            out = f()
            times[name].append(time.perf_counter() - t0)
            peaks[name].append(_rss_peak() - before)
            del out
    ours, base = statistics.median(times["kgrec"]), statistics.median(times["floor"])
    mo, mb = statistics.median(peaks["kgrec"]), statistics.median(peaks["floor"])
    return {"kgrec_s": ours, "floor_s": base, "ratio": ours / base, "users": n, "k": 10,
            "kgrec_peak_bytes": mo, "floor_peak_bytes": mb, "memory_ratio": mo / mb,
            "reps": args.reps}


def part_evaluate(rec, args, split) -> dict:
    import numpy as np
    import torch

    import kgrec
    from kgrec.evaluate import mask_rows

    data = split.test
    users = np.flatnonzero(np.diff(data.positives.indptr) > 0)
    vu, vi = rec.user_embedding, rec.item_embedding

    def floor(_r):
        for s in range(0, len(users), 1024):
            b = users[s:s + 1024]
            scores = vu[torch.from_numpy(b)] @ vi.T
            mask_rows(scores, data.exclude, b)
            torch.topk(scores, 20, dim=1)

    metrics: dict = {}

    def ours(_r):
        metrics.update(kgrec.evaluate(rec, data, k=[10, 20]))

    t_ours, t_floor = _median_pair(ours, floor, args.eval_reps)
    return {"kgrec_s": t_ours, "floor_s": t_floor, "ratio": t_ours / t_floor,
            "users": len(users), "metrics": metrics, "reps": args.eval_reps}


def part_start(rec, args) -> dict:
    user = rec.user_ids[7]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    kgrec_cmd = [sys.executable, "-m", "kgrec.cli", "--format", "tsv", "recommend",
                 str(args.run), "--user", user, "--k", "10"]
    floor_src = (
        "import json, sys, torch\n"
        "from safetensors import safe_open\n"
        "run, user = sys.argv[1], sys.argv[2]\n"
        "doc = json.load(open(run + '/recommender.json'))\n"
        "with safe_open(run + '/model.safetensors', 'pt') as f:\n"
        "    U, I = f.get_tensor('user_embedding'), f.get_tensor('item_embedding')\n"
        "    ptr, idx = f.get_tensor('seen.indptr'), f.get_tensor('seen.indices')\n"
        "u = doc['user_ids'].index(user)\n"
        "s = U[u] @ I.T\n"
        "s[idx[ptr[u]:ptr[u + 1]]] = -float('inf')\n"
        "top = torch.topk(s, 10).indices.tolist()\n"
        "print('\\n'.join(doc['item_ids'][i] + '\\t' + doc['item_names'][i] for i in top))\n")
    floor_cmd = [sys.executable, "-c", floor_src, str(args.run), user]
    answers = {}

    def run(cmd, key):
        def f(_r):
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            answers[key] = out.stdout
        return f

    ours, base = _median_pair(run(kgrec_cmd, "kgrec"), run(floor_cmd, "floor"), 2 * args.reps)
    same = [ln.split("\t")[0] for ln in answers["floor"].splitlines()]
    got = [ln.split("\t")[1] for ln in answers["kgrec"].splitlines()[1:] if "\t" in ln]
    return {"kgrec_s": ours, "floor_s": base, "ratio": ours / base, "reps": 2 * args.reps,
            "same_items": got == same}


def part_ann(rec, args) -> dict:
    import numpy as np
    import torch

    from kgrec.recommender.ann import BACKENDS, AnnIndex, available

    items = rec.item_embedding.numpy().astype(np.float32)
    rng = np.random.default_rng(0)
    mean, cov = items.mean(0), np.cov(items, rowvar=False)
    extra = rng.multivariate_normal(mean, cov, size=args.ann_items - len(items)).astype(
        np.float32)
    catalogue = np.concatenate([items, extra])
    queries = rec.user_embedding[torch.from_numpy(
        rng.choice(rec.num_users, args.ann_queries, replace=False))].numpy()
    cat_t = torch.from_numpy(catalogue)
    exact_top, exact_times = [], []
    for q in queries:
        t0 = time.perf_counter()
        exact_top.append(torch.topk(torch.from_numpy(q) @ cat_t.T, 20).indices.numpy())
        exact_times.append(time.perf_counter() - t0)
    exact_s = statistics.median(exact_times)
    out = {"items": len(catalogue), "queries": len(queries), "exact_s": exact_s, "backends": {}}
    configs = [(name, True) for name in args.ann_backends or BACKENDS] + [("hnswlib", False)]
    for name, lift in configs:
        key = name if lift else f"{name} (raw inner product)"
        if name not in available():
            out["backends"][key] = {"installed": False}
            continue
        t0 = time.perf_counter()
        index = AnnIndex.build(catalogue, backend=name, lift=lift)
        build_s = time.perf_counter() - t0
        rows = []
        for ef in index.effort_levels():
            index.set_effort(ef)
            times, recall = [], []
            for q, truth in zip(queries, exact_top, strict=True):
                t0 = time.perf_counter()
                got = index.search(q[None, :], 20)[0]
                times.append(time.perf_counter() - t0)
                recall.append(len(set(got.tolist()) & set(truth.tolist())) / 20)
            rows.append({"effort": ef, "recall@20": float(np.mean(recall)),
                         "query_s": statistics.median(times),
                         "speedup": exact_s / statistics.median(times)})
        import importlib.metadata as md

        dist = {"faiss": "faiss-cpu"}.get(name, name)
        out["backends"][key] = {"installed": True, "build_s": build_s, "levels": rows,
                                 "params": index.params(), "version": md.version(dist)}
        del index
    return out


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x * 1000:.2f}"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def tables(runs) -> dict[str, str]:
    """``serve.md``: ranking against its floor, the ANN index, the load test."""
    parts = runs.glob("serve-*.json")
    if not parts:
        return {}
    runs = runs.scoped(parts)
    lines = ["# Serving: ranking against its floor, the approximate index, the load test", "",
             "Reproduce: `python benchmarks/serve.py --run RUN` and `python "
             "benchmarks/serve_load.py --run RUN` (RUN: a `kgrec train` run on "
             "kgat-amazon-book), then `python benchmarks/report.py`.", "",
             runs.header(parts), "",
             "Floor: the same vectors, one matmul, the seen items masked, one `torch.topk` "
             "(no id mapping, no tie handling, no metrics); kgrec and its floor timed back to "
             "back in one process, alternating, one thread; ratio of medians.", "",
             "## Ranking (goals: single <= 1.3x, 10k users <= 1.2x time and memory, "
             "evaluate <= 1.3x, command start <= 1.3x)", "",
             "| part | dataset | what | kgrec | floor | kgrec / floor | goal |",
             "|---|---|---|---:|---:|---:|---:|"]
    goals = {"single": 1.3, "batch": 1.2, "evaluate": 1.3, "start": 1.3}
    what = {"single": "`rec.recommend([user], k=10)`, ms (median of users)",
            "batch": "`rec.recommend(10,000 users, k=10)`, ms",
            "evaluate": "`kgrec.evaluate(rec, split.test)`, ms (every test user)",
            "start": "`kgrec recommend RUN --user X` as a new process, ms"}
    for part in ("single", "batch", "evaluate", "start"):
        for d in [d for d in parts if d.get("part") == part]:
            ok = "met" if d["ratio"] <= goals[part] else "missed"
            lines.append(f"| {part}{runs.mark([d])} | {d['dataset']} | {what[part]} | "
                         f"{_ms(d['kgrec_s'])} | {_ms(d['floor_s'])} | {d['ratio']:.2f}x | "
                         f"<= {goals[part]}x ({ok}) |")
            if part == "batch":
                mo, mb = d["kgrec_peak_bytes"], d["floor_peak_bytes"]
                ok = "met" if d["memory_ratio"] <= 1.2 else "missed"
                lines.append(f"| batch memory{runs.mark([d])} | {d['dataset']} | peak RSS "
                             f"growth during the call, MB | {mo / 2**20:.0f} | "
                             f"{mb / 2**20:.0f} | {d['memory_ratio']:.2f}x | <= 1.2x ({ok}) |")
            if part == "start" and not d.get("same_items"):
                lines.append("| start | | the two commands gave different lists! | | | | |")
    for d in [d for d in parts if d.get("part") == "ann"]:
        lines += ["", f"## Approximate index: {d['items']:,} items{runs.mark([d])}", "",
                  f"The run's {d['catalogue']['items']:,} item vectors plus vectors drawn "
                  "from a Gaussian fitted to them; queries: "
                  f"{d['queries']} of its users' vectors; exact: one matmul + topk over all "
                  f"items ({_ms(d['exact_s'])} ms a query). Recall@20: the share of the "
                  "exact top 20 the index returns. Goal: recall >= 0.98 at >= 10x.", "",
                  "| backend | build s | search effort (ef) | recall@20 | ms a query | "
                  "speed-up |", "|---|---:|---:|---:|---:|---:|"]
        for name, b in d["backends"].items():
            if not b.get("installed"):
                lines.append(f"| {name} | not installed | | | | |")
                continue
            for row in b["levels"]:
                lines.append(f"| {name} | {b['build_s']:.0f} | {row['effort']} | "
                             f"{row['recall@20']:.4f} | {_ms(row['query_s'])} | "
                             f"{row['speedup']:.1f}x |")
    for d in runs.glob("serve-load-*.json"):
        lines += ["", f"## Load test: {d['dataset']}{runs.mark([d])}", "",
                  f"`kgrec serve` (one process, one torch thread) on loopback; open-loop "
                  f"requests for {d['seconds']:g} s at each rate, latency from each request's "
                  f"due time; `recommend` is `GET /users/{{random user}}/recommendations?"
                  f"k={d['k']}`, `empty` is the same framework's endpoint answering `{{}}` "
                  "(the floor). Goal: p99 at 300/s <= 3x the empty endpoint's, no errors.", "",
                  "| endpoint | rate /s | answered | errors | p50 ms | p95 ms | p99 ms | "
                  "max ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in d["rates"]:
            f = _num
            lines.append(f"| {r['endpoint']} | {r['rate']:g} | {r['answered']} / "
                         f"{r['requests']} | {sum(r['errors'].values())} | {f(r['p50_ms'])} | "
                         f"{f(r['p95_ms'])} | {f(r['p99_ms'])} | {f(r['max_ms'])} |")
        p99 = {r["endpoint"]: r["p99_ms"] for r in d["rates"] if r["rate"] == 300}
        if p99.get("recommend") and p99.get("empty"):
            ratio = p99["recommend"] / p99["empty"]
            lines += ["", f"p99 at 300/s: {ratio:.2f}x the empty endpoint's "
                          f"({'met' if ratio <= 3 else 'missed'}: goal <= 3x)."]
        sat = d["saturation"]
        lines += ["", "Saturation (closed loop, "
                  f"{sat['recommend']['concurrency']} connections): recommend "
                  f"{sat['recommend']['answers_per_s']:.0f} answers/s, empty "
                  f"{sat['empty']['answers_per_s']:.0f}/s; the load generator shares the "
                  "2-core machine with the service."]
    return {"serve.md": "\n".join(lines)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a saved run (kgrec train --out)")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--data-dir")
    ap.add_argument("--reps", type=int, default=5, help="batch and start repetitions")
    ap.add_argument("--eval-reps", type=int, default=3)
    ap.add_argument("--ann-items", type=int, default=1_000_000)
    ap.add_argument("--ann-queries", type=int, default=300)
    ap.add_argument("--ann-backends", nargs="*")
    ap.add_argument("--out-dir", type=Path, default=RUNS)
    args = ap.parse_args()
    one_thread()
    import kgrec

    rec = kgrec.Recommender.load(args.run)
    split = None
    for part in args.parts:
        print(f"[serve] {part} ...", flush=True)
        if part == "evaluate":
            from kgrec.data.prepare import split_for

            cfg = rec.config
            if args.data_dir:
                cfg.data.data_dir = args.data_dir
            split = split_for(cfg.data)
            doc = part_evaluate(rec, args, split)
        else:
            doc = {"single": part_single, "batch": part_batch, "start": part_start,
                   "ann": part_ann}[part](rec, args)
        doc = {"part": part, "dataset": rec.dataset, "model": rec.name,
               "catalogue": {"users": rec.num_users, "items": rec.num_items}, **doc}
        print(json.dumps({k: v for k, v in doc.items() if k != "metrics"}, indent=1)[:2000],
              flush=True)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        write_run(args.out_dir / f"serve-{part}-{rec.dataset}.json", doc, rec.config, split)


if __name__ == "__main__":
    main()
