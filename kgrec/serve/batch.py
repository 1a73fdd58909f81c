"""Batch inference: every user's top K, in chunks, to a CSV file or to Neo4j as
``(:User)-[:RECOMMENDED {run, rank, score}]->(:Item)`` relationships beside the graph."""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kgrec.progress import progress as progress_bar
from kgrec.recommender import Recommender


def run_id(run: str | Path) -> str:
    """A saved run's id: its folder name and a hash of its ``recommender.json``."""
    run = Path(run)
    digest = hashlib.sha256((run / "recommender.json").read_bytes()).hexdigest()[:12]
    return f"{run.name}@{digest}"


def top_lists(rec: Recommender, k: int, *, chunk: int = 4096, exclude_seen: bool = True,
              progress: bool = False) -> Iterator[tuple[list[str], list[list[str]],
                                                        list[list[float]]]]:
    """Every user's top ``k`` (:meth:`Recommender.recommend`, the one ranking path),
    ``chunk`` users at a time: ``(user ids, item ids per user, scores per user)``, best
    first; a user with fewer than ``k`` candidates gets a shorter list."""
    with progress_bar(rec.num_users, "recommend", "user", enabled=progress) as bar:
        for lo in range(0, rec.num_users, chunk):
            users = rec.user_ids[lo:lo + chunk]
            lists = rec.recommend(users, k, exclude_seen=exclude_seen)
            yield users, [x.items for x in lists], [x.scores for x in lists]
            bar.update(len(users))


def write_csv(rec: Recommender, path: str | Path, k: int, *, progress: bool = False
              ) -> int:
    """Write ``user,rank,item,score,name`` rows for every user (atomically: a temporary file
    renamed at the end, so a failed run leaves nothing half-written). Returns the rows."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    names = dict(zip(rec.item_ids, rec.item_names, strict=True))
    rows = 0
    try:
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["user", "rank", "item", "score", "name"])
            for users, items, scores in top_lists(rec, k, progress=progress):
                for u, its, sc in zip(users, items, scores, strict=True):
                    w.writerows([u, r, x, f"{s:.6g}", names[x]]
                                for r, (x, s) in enumerate(zip(its, sc, strict=True), 1))
                    rows += len(its)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def write_neo4j(rec: Recommender, store: Any, run: str, k: int, *, replace: bool = False,
                progress: bool = False) -> dict[str, int]:
    """Write every user's top ``k`` into ``store`` (a :class:`~kgrec.store.neo4j.Neo4jStore`
    holding the run's dataset) as RECOMMENDED relationships of ``run``
    (:meth:`~kgrec.store.neo4j.Neo4jStore.write_recommended`: idempotent per run)."""
    total = {"created": 0, "existing": 0, "deleted": 0, "missing_users": 0}
    for users, items, scores in top_lists(rec, k, progress=progress):
        got = store.write_recommended(rec.dataset, run, users, items, scores, replace=replace)
        for key, v in got.items():
            total[key] += v
    return total
