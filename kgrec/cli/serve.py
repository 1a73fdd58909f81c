"""``kgrec serve``: a trained run over HTTP; and ``kgrec recommend --all``'s batch output."""

from __future__ import annotations

import argparse
import ipaddress
import socket
from pathlib import Path

from kgrec.errors import ConfigError

LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def read_token(path: str | None, host: str) -> str | None:
    """The API token of ``--token-file``; required when ``host`` is not loopback."""
    if path is None:
        if not _is_loopback(host):
            raise ConfigError(f"serve --host {host}: binding beyond loopback needs an API token "
                              "(--token-file FILE, one line); requests then carry "
                              "'Authorization: Bearer <token>'")
        return None
    try:
        token = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--token-file {path}: {getattr(exc, 'strerror', None) or exc}"
                          ) from None
    if len(token) < 16 or "\n" in token:
        raise ConfigError(f"--token-file {path}: the token must be one line of at least 16 "
                          "characters")
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    run = Path(args.run)
    if not (run / "recommender.json").is_file():
        raise ConfigError(f"serve: {run} is not a run written by `kgrec train` (no "
                          "recommender.json)")
    if not 0 < args.port < 65536:
        raise ConfigError(f"serve --port {args.port}: not a port number")
    token = read_token(args.token_file, args.host)
    ann = None if args.ann == "off" else args.ann
    if ann is not None:
        from kgrec.recommender.ann import available

        if ann not in available():
            raise ConfigError(f"serve --ann {ann}: the library is not installed (pip install "
                              f"{'faiss-cpu' if ann == 'faiss' else ann}); installed: "
                              f"{available() or 'none'}")
    from kgrec.serve.service import serve

    serve(run, host=args.host, port=args.port, token=token, events=args.events, ann=ann,
          ann_min_items=args.ann_min_items,
          log_level="info" if getattr(args, "verbose", 0) else "warning")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``serve``."""
    s = sub.add_parser("serve", help="serve a trained run over HTTP: recommendations, new "
                       "users, items and clicks, metrics, hot reload (OpenAPI at /docs)",
                       description="Serve a run written by `kgrec train` over HTTP (FastAPI + "
                       "uvicorn). Endpoints: GET /users/{id}/recommendations, POST "
                       "/recommendations, POST /interactions, POST /items, GET /health, GET "
                       "/metrics, POST /admin/reload, and a page at /. New clicks and items "
                       "go to a durable log (--events) replayed at every start.")
    s.add_argument("run", help="a directory written by `kgrec train`")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; "
                   "anything else needs --token-file)")
    s.add_argument("--port", type=int, default=8000, help="default 8000")
    s.add_argument("--token-file", help="a file with the API token (one line, >= 16 "
                   "characters); every request but /health must then send 'Authorization: "
                   "Bearer <token>'")
    s.add_argument("--events", help="the durable event log (default RUN/events.jsonl)")
    s.add_argument("--ann", default="off", choices=["off", "hnswlib", "faiss", "usearch"],
                   help="rank through an approximate index once the catalogue has "
                   "--ann-min-items items (default off: exact)")
    s.add_argument("--ann-min-items", type=int, default=200_000, metavar="N",
                   help="catalogue size from which --ann applies (default 200000)")
    s.epilog = ("`kgrec -v serve ...` logs uvicorn's lines and every reload too; errors are "
                "logged whatever the level.")
    s.set_defaults(func=cmd_serve)
