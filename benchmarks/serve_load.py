"""Load test of ``kgrec serve`` on loopback: latency at fixed request rates, against the same
framework's empty endpoint as the floor, and throughput at saturation.

The service (one uvicorn process, one torch thread) serves a saved run; the load generator
(aiohttp, in this process, on the other core) sends single-user top-20 requests
(``GET /users/{random user}/recommendations?k=20``) **open-loop** at each fixed rate: request
``i`` is due at ``start + i / rate`` whatever the answers before it did, and its latency is
counted from that due time, so a slow answer that delays the next ones is charged to them
too (no coordinated omission). The floor is ``GET /empty`` (FastAPI answering ``{}``, the
same middleware) at the same rates. Saturation: a closed loop of ``--concurrency``
connections, each sending its next request when its last one is answered, for
``--seconds``: answers per second.

Bounded: each rate runs ``--seconds`` (default 10) and at most ``rate * seconds`` requests;
loopback only. Goal (the real-time issue): p99 at 300/s <= 3x the empty endpoint's p99 at
300/s, zero errors. One JSON, ``benchmarks/results/runs/serve-load-<dataset>.json``;
table by ``report.py`` (``serve.md``).

    python benchmarks/serve_load.py --run runs/amazon-lightgcn
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from common import RUNS, write_run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run: Path, port: int, events: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kgrec.cli", "serve", str(run), "--port",
                             str(port), "--events", str(events)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the service did not start in 120 s")


async def _open_loop(base: str, paths: list[str], rate: float, seconds: float) -> dict:
    import aiohttp

    n = int(rate * seconds)
    lat = np.full(n, np.nan)
    errors: dict[str, int] = {}
    conn = aiohttp.TCPConnector(limit=256, force_close=False)
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter() + 0.2

        async def one(i: int) -> None:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.get(base + paths[i % len(paths)]) as r:
                    await r.read()
                    if r.status != 200:
                        errors[str(r.status)] = errors.get(str(r.status), 0) + 1
                        return
            except (aiohttp.ClientError, OSError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            lat[i] = time.perf_counter() - due

        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - start
    ok = lat[np.isfinite(lat)]
    pct = (lambda q: float(np.percentile(ok, q) * 1000)) if len(ok) else (lambda q: None)
    return {"rate": rate, "requests": n, "answered": len(ok), "errors": errors,
            "achieved_per_s": len(ok) / wall, "p50_ms": pct(50), "p95_ms": pct(95),
            "p99_ms": pct(99), "max_ms": float(ok.max() * 1000) if len(ok) else None}


async def _closed_loop(base: str, paths: list[str], concurrency: int, seconds: float) -> dict:
    import aiohttp

    done, errors, lat = 0, 0, []
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        end = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            nonlocal done, errors
            i = w
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                async with session.get(base + paths[i % len(paths)]) as r:
                    await r.read()
                    if r.status == 200:
                        done += 1
                        lat.append(time.perf_counter() - t0)
                    else:
                        errors += 1
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"concurrency": concurrency, "answers_per_s": done / wall, "errors": errors,
            "p50_ms": float(np.percentile(lat, 50) * 1000) if lat else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--rates", type=float, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--out-dir", type=Path, default=RUNS)
    args = ap.parse_args()
    doc_run = json.loads((args.run / "recommender.json").read_text())
    users = doc_run["user_ids"]
    rng = random.Random(0)
    paths = [f"/users/{rng.choice(users)}/recommendations?k={args.k}" for _ in range(20_000)]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    events = args.out_dir / f".serve-load-{os.getpid()}.jsonl"
    proc = _start(args.run, port, events)
    try:
        for p in paths[:200]:  # warm-up
            urllib.request.urlopen(base + p).read()
        rows = []
        for rate in args.rates:
            for name, ps in (("recommend", paths), ("empty", ["/empty"])):
                print(f"[serve-load] {name} at {rate:g}/s for {args.seconds:g} s", flush=True)
                r = asyncio.run(_open_loop(base, ps, rate, args.seconds))
                rows.append({"endpoint": name, **r})
                print(json.dumps(rows[-1]), flush=True)
        sat = {}
        for name, ps in (("recommend", paths), ("empty", ["/empty"])):
            print(f"[serve-load] {name} saturation, {args.concurrency} connections", flush=True)
            sat[name] = asyncio.run(_closed_loop(base, ps, args.concurrency, args.seconds))
            print(json.dumps(sat[name]), flush=True)
        with urllib.request.urlopen(base + "/metrics") as r:
            metrics = r.read().decode()
    finally:
        proc.terminate()
        proc.wait(20)
        events.unlink(missing_ok=True)
    served = [ln for ln in metrics.splitlines() if ln.startswith("kgrec_requests_total")]
    out = {"dataset": doc_run["dataset"], "run": str(args.run), "k": args.k,
           "seconds": args.seconds, "rates": rows, "saturation": sat,
           "server_counts": served, "loopback": True}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_run(args.out_dir / f"serve-load-{doc_run['dataset']}.json", out)


if __name__ == "__main__":
    main()
