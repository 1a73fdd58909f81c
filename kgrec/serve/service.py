"""``kgrec serve``: a trained run over HTTP (FastAPI on uvicorn).

FastAPI because it is what Python services of this kind are written in: typed request
models give the OpenAPI page (``/docs``, ``/openapi.json``) and field-level 4xx errors for
free, and uvicorn is its standard server. Every endpoint is ``async`` and runs on the event
loop's one thread: the model (a :class:`~kgrec.recommender.Recommender`) is read and changed
by one request at a time, with no lock, and a ranking (a millisecond) never waits for a thread
pool.
Only loading a run for a reload runs on a worker thread, while the old run keeps serving.

Endpoints (see ``/docs``):

- ``GET /users/{id}/recommendations?k=&exclude_seen=&explain=&domain=``;
- ``GET /users/{id}``: the user's items; ``GET /items?q=``: items whose name has ``q``;
- ``POST /recommendations``: known users in a batch, or someone new from items and/or a
  profile (placed as :meth:`Recommender.add_users` places a user, not kept);
- ``POST /interactions``: new links, logged durably (:class:`~kgrec.serve.events.EventLog`)
  before the answer, then applied to the user's vector at once
  (:meth:`Recommender.add_interactions`);
- ``POST /items``: a brand-new item from its text (:meth:`Recommender.add_items`), logged;
- ``GET /health``, ``GET /metrics`` (Prometheus text), ``POST /admin/reload``;
- ``GET /``: a page to look at recommendations and their explanations.

Errors are JSON ``{"error": "...", "field": "..."}`` with a 4xx status: unknown ids (404),
invalid fields (422), a body over ``max_body`` bytes (413), a missing or wrong token (401).
An unexpected failure is a 500 with no traceback (the log has it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kgrec.errors import ConfigError, DataFormatError, KgrecError, UnknownIdError
from kgrec.recommender import Recommender
from kgrec.serve.events import EventLog, read_events

log = logging.getLogger("kgrec.serve")

PAGE = Path(__file__).with_name("page.html")
MAX_K = 100_000  # and never more than the catalogue (a 422 naming k)


class ApiError(Exception):
    """A 4xx answer: ``{"error": message, "field": field}``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


# ---------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RecommendRequest(_Body):
    """Known users (``users``), or someone new (``items`` and/or ``profile``)."""

    users: list[str] | None = Field(None, max_length=10_000,
                                    description="known user ids: one list each")
    items: list[str] | None = Field(None, max_length=10_000,
                                    description="a new user's items (external ids)")
    profile: dict[str, Any] | None = Field(None, description="a new user's attributes")
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
    domain: str | None = None


class Interaction(_Body):
    user: str = Field(min_length=1, max_length=256)
    item: str = Field(min_length=1, max_length=256)
    behavior: str = Field("click", max_length=64)
    time: float | None = Field(None, description="seconds since the epoch (default: now)")


class InteractionsRequest(_Body):
    events: list[Interaction] = Field(min_length=1, max_length=10_000)


class NewItem(_Body):
    id: str = Field(min_length=1, max_length=256)
    text: str = Field(min_length=1, max_length=20_000)
    name: str | None = Field(None, max_length=1000)
    domain: str = Field("", max_length=256)


class ReloadRequest(_Body):
    run: str | None = Field(None, description="the run to switch to (default: the same "
                                              "folder, reread)")


# ---------------------------------------------------------------------- the service state
class Service:
    """The served run, its event log and the request metrics.

    Args:
        run: a folder written by ``kgrec train``.
        events: the event log (default ``<run>/events.jsonl``); replayed over the run now and
            at every reload.
        token: the API token every request but ``/health`` must carry (``Authorization:
            Bearer ...``); ``None``: no token (loopback only, the CLI enforces it).
        ann: an ANN backend to rank with once the catalogue has ``ann_min_items`` items, or
            ``None`` (exact ranking).
        max_body: the largest request body accepted, bytes.
    """

    def __init__(self, run: str | Path, *, events: str | Path | None = None,
                 token: str | None = None, ann: str | None = None,
                 ann_min_items: int = 200_000, max_body: int = 1 << 20) -> None:
        self.run = Path(run)
        self.token = token.encode() if token else None
        self.ann, self.ann_min_items, self.max_body = ann, ann_min_items, max_body
        self.events = EventLog(events or self.run / "events.jsonl")
        self.rec, self.model_id, self.applied = self._open(self.run)
        self.started = time.time()
        disable_created_metrics()  # no *_created series beside every counter
        self.registry = CollectorRegistry()
        self.requests = Counter("kgrec_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "kgrec_request_seconds", "time to answer, by route", ["route"],
            buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5),
            registry=self.registry)
        self.model_info = Gauge("kgrec_model_info", "the served run (value 1)", ["model"],
                                registry=self.registry)
        self.catalogue = Gauge("kgrec_catalogue", "users and items served", ["kind"],
                               registry=self.registry)
        self.events_total = Gauge("kgrec_events_logged", "events in the durable log",
                                  registry=self.registry)
        self._gauges(model=True)
        self._reloading = asyncio.Lock()

    def _open(self, run: Path) -> tuple[Recommender, str, int]:
        """Load ``run``, replay the whole event log over it, build its index."""
        rec = Recommender.load(run)
        digest = hashlib.sha256((run / "recommender.json").read_bytes()).hexdigest()[:12]
        model_id = f"{run.name}@{digest}"
        applied = self._replay(rec, 0)
        if self.ann:
            rec.build_index(self.ann, min_items=self.ann_min_items)
        return rec, model_id, applied

    def _replay(self, rec: Recommender, after: int) -> int:
        """Apply the log's events numbered above ``after``; returns the last one applied."""
        last = after
        for e in read_events(self.events.path):
            if e.get("seq", 0) <= after:
                continue
            try:
                if e["type"] == "item":
                    if not rec.has_item(e["id"]):
                        rec.add_items([e["id"]], [e["text"]],
                                      names=[e.get("name") or e["text"]],
                                      domain=e.get("domain", ""))
                else:
                    rec.add_interactions([e["user"]], [e["item"]])
            except KgrecError as exc:  # e.g. a run that cannot place items: keep serving
                log.warning("%s:%d: event not applied to %s (%s)", self.events.path,
                            e["_line"], run_name(rec), exc)
            last = e["seq"]
        return last

    def _gauges(self, model: bool = False) -> None:
        """The catalogue's gauges (after every change); with ``model``, the model id too
        (at start and reload)."""
        if model:
            self.model_info.clear()
            self.model_info.labels(model=self.model_id).set(1)
        self.catalogue.labels(kind="users").set(self.rec.num_users)
        self.catalogue.labels(kind="items").set(self.rec.num_items)
        self.events_total.set(self.events.seq)

    async def reload(self, run: Path) -> dict[str, Any]:
        """Load ``run`` on a worker thread while the current one serves, then switch: no
        request fails or waits during the load. Events logged meanwhile are applied to the
        new run on the loop just before the switch."""
        if not (run / "recommender.json").is_file():
            raise ApiError(422, f"{run}: not a saved run (no recommender.json)", "run")
        async with self._reloading:
            t0 = time.perf_counter()
            try:
                rec, model_id, applied = await asyncio.to_thread(self._open, run)
            except KgrecError as exc:
                raise ApiError(422, str(exc), "run") from None
            applied = self._replay(rec, applied)  # on the loop: nothing can slip in now
            old = self.model_id
            self.rec, self.model_id, self.applied, self.run = rec, model_id, applied, run
            self._gauges(model=True)
            return {"model": model_id, "previous": old, "seconds": time.perf_counter() - t0,
                    "events_replayed": applied}


# ---------------------------------------------------------------------- the ASGI app
def _json(status: int, doc: dict[str, Any]) -> Response:
    return Response(json.dumps(doc), status, media_type="application/json")


def create_app(service: Service) -> FastAPI:
    """The FastAPI app over ``service`` (``uvicorn.run(create_app(...))``)."""
    app = FastAPI(title="kgrec", version="1", description=__doc__.split("\n\n")[0],
                  docs_url="/docs", redoc_url=None)
    app.state.service = service
    s = service

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> Response:
        return _json(exc.status, {"error": exc.message, "field": exc.field})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if err.get("type") == "json_invalid":  # loc is ("body", character)
            at = err.get("loc", ("body", "?"))[-1]
            return _json(422, {"error": f"body: not valid JSON (at character {at})",
                               "field": "body"})
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        return _json(422, {"error": f"{field}: {err.get('msg', 'invalid')}", "field": field})

    @app.exception_handler(Exception)
    async def _crash(_req: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return _json(500, {"error": f"internal error ({type(exc).__name__}); the service log "
                                    "has the details", "field": None})

    # --- pure ASGI middleware: token, body size, metrics (no per-request thread hop)
    inner = app.build_middleware_stack

    def build() -> Any:
        return _guard(inner(), s)

    app.build_middleware_stack = build  # type: ignore[method-assign]

    # --- reading
    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and what is served."""
        return {"status": "ok", "model": s.model_id, "users": s.rec.num_users,
                "items": s.rec.num_items, "events": s.events.seq,
                "index": s.rec.index.params() if s.rec.index is not None else None,
                "uptime_s": round(time.time() - s.started, 1)}

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text: requests by route and status, latency histogram, model id."""
        return Response(generate_latest(s.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/users/{user_id}/recommendations")
    async def user_recommendations(
            user_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
            exclude_seen: bool = True, explain: bool = False,
            domain: str | None = None) -> dict[str, Any]:
        """The top ``k`` items for a known user, with names and scores (and explanations:
        knowledge-graph paths as text and as small graphs, else the nearest items)."""
        rec = s.rec
        _known_user(rec, user_id)
        _k_fits(rec, k)
        try:
            (lst,) = rec.recommend([user_id], k, exclude_seen=exclude_seen, domain=domain)
        except UnknownIdError as exc:
            raise ApiError(404, str(exc), "domain") from None
        items = _items(lst)
        if explain:
            for row, e in zip(items, rec.explanations(user_id, lst.items), strict=True):
                row["explanation"] = {"text": e.text, **e.to_dict()}
        return {"user": user_id, "model": s.model_id, "items": items}

    @app.get("/users/{user_id}")
    async def user(user_id: str, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
                   ) -> dict[str, Any]:
        """A known user's items (training links and those added since)."""
        rec = s.rec
        _known_user(rec, user_id)
        have = rec.items_of(user_id)
        idx = rec.item_index(have[:limit])
        return {"user": user_id, "count": len(have),
                "items": [{"id": x, "name": rec.item_names[i]}
                          for x, i in zip(have[:limit], idx.tolist(), strict=True)]}

    @app.get("/items")
    async def items(q: Annotated[str, Query(max_length=200)] = "",
                    limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
        """Items whose name or id contains ``q`` (case-insensitive), first ``limit``."""
        rec, needle, out = s.rec, q.lower(), []
        for x, name in zip(rec.item_ids, rec.item_names, strict=True):
            if needle in name.lower() or needle in x.lower():
                out.append({"id": x, "name": name})
                if len(out) >= limit:
                    break
        return {"items": out}

    @app.get("/users")
    async def users(limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
        """Some user ids (the first ``limit``), to start from."""
        return {"count": s.rec.num_users, "users": s.rec.user_ids[:limit]}

    @app.post("/recommendations")
    async def recommendations(req: RecommendRequest) -> dict[str, Any]:
        """Lists for known ``users`` (batched), or for someone new from ``items`` and/or
        ``profile`` (placed as a new user is, not kept)."""
        rec = s.rec
        _k_fits(rec, req.k)
        if req.users is not None:
            if req.items is not None or req.profile is not None:
                raise ApiError(422, "give users, or items/profile for someone new, not both",
                               "users")
            for u in req.users:
                _known_user(rec, u, "users")
            lists = rec.recommend(req.users, req.k, exclude_seen=req.exclude_seen,
                                  domain=_domain(rec, req.domain))
            return {"model": s.model_id,
                    "lists": [{"user": x.user, "items": _items(x)} for x in lists]}
        if req.items is None and req.profile is None:
            raise ApiError(422, "give users, or items and/or a profile", "users")
        for x in req.items or []:
            _known_item(rec, x, "items")
        try:
            lst = rec.recommend_new(req.items or [], req.k, profile=req.profile,
                                    domain=_domain(rec, req.domain),
                                    exclude_seen=req.exclude_seen)
        except (ConfigError, DataFormatError) as exc:
            raise ApiError(422, str(exc), "profile" if req.profile else "items") from None
        return {"model": s.model_id, "lists": [{"user": None, "items": _items(lst)}]}

    # --- learning
    @app.post("/interactions")
    async def interactions(
            body: Annotated[dict[str, Any], Body(openapi_examples={
                "one": {"value": {"user": "u1", "item": "i9", "behavior": "click"}},
                "several": {"value": {"events": [{"user": "u1", "item": "i9"}]}}})]
    ) -> dict[str, Any]:
        """New links (one :class:`Interaction`, or ``{"events": [...]}``): logged durably,
        then applied to each user's vector at once (a new user is placed from its first
        item)."""
        rec = s.rec
        try:
            req = (InteractionsRequest.model_validate(body) if "events" in body
                   else Interaction.model_validate(body))
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        events = req.events if isinstance(req, InteractionsRequest) else [req]
        for n, e in enumerate(events):
            where = f"events.{n}." if isinstance(req, InteractionsRequest) else ""
            _known_item(rec, e.item, where + "item")
            if not rec.has_user(e.user) and rec.new_users is None:
                raise ApiError(404, f"unknown user id {e.user!r}, and a {rec.name!r} model "
                                    "cannot place new users", where + "user")
        now = time.time()
        written = s.events.append([{"type": "interaction", "user": e.user, "item": e.item,
                                    "behavior": e.behavior,
                                    "time": e.time if e.time is not None else now}
                                   for e in events])
        changed = rec.add_interactions([e.user for e in events], [e.item for e in events])
        s.applied = written[-1]["seq"]
        s._gauges()
        return {"accepted": len(written), "seq": written[-1]["seq"], "changed": changed}

    @app.post("/items", status_code=201)
    async def new_item(item: NewItem) -> dict[str, Any]:
        """A brand-new item, placed from its text as evaluation places a cold item and
        servable at once (models that place items from text: hgnn with text features)."""
        rec = s.rec
        if rec.has_item(item.id):
            raise ApiError(409, f"item id {item.id!r} exists already", "id")
        if not item.text.strip():
            raise ApiError(422, "text: must not be blank", "text")
        try:  # place first: a model that cannot must not leave an event behind
            rec.add_items([item.id], [item.text], names=[item.name or item.text],
                          domain=item.domain)
        except ConfigError as exc:
            raise ApiError(422, str(exc), "text") from None
        (written,) = s.events.append([{"type": "item", "id": item.id, "text": item.text,
                                       "name": item.name, "domain": item.domain}])
        s.applied = written["seq"]
        s._gauges()
        return {"id": item.id, "seq": written["seq"], "items": rec.num_items}

    @app.post("/admin/reload")
    async def reload(req: ReloadRequest | None = None) -> dict[str, Any]:
        """Switch to a newly trained run (or reread the current one) without a failed
        request: the new run loads beside the old, the log is replayed over it, then it
        takes over."""
        run = Path(req.run) if req is not None and req.run else s.run
        return await s.reload(run)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text())

    @app.get("/empty", include_in_schema=False)
    async def empty() -> dict[str, Any]:
        """Nothing: the framework's own cost, the load test's floor."""
        return {}

    return app


def run_name(rec: Recommender) -> str:
    return f"{rec.name} run of {rec.dataset}"


def _items(lst: Any) -> list[dict[str, Any]]:
    return [{"id": x, "name": n, "score": round(v, 6) if math.isfinite(v) else None}
            for x, n, v in zip(lst.items, lst.names, lst.scores, strict=True)]


def _k_fits(rec: Recommender, k: int) -> None:
    if k > rec.num_items:
        raise ApiError(422, f"k: at most {rec.num_items} (the catalogue's size)", "k")


def _known_user(rec: Recommender, user: str, field: str = "user_id") -> None:
    if not rec.has_user(user):
        raise ApiError(404, f"unknown user id {user!r}", field)


def _known_item(rec: Recommender, item: str, field: str = "item") -> None:
    if not rec.has_item(item):
        raise ApiError(404, f"unknown item id {item!r}", field)


def _domain(rec: Recommender, domain: str | None) -> str | None:
    if domain is not None and domain not in set(rec.item_domains.tolist()):
        raise ApiError(404, f"unknown domain {domain!r}", "domain")
    return domain


def _guard(app: Any, s: Service) -> Any:
    """ASGI middleware: the token (constant-time compare), the body limit (413 before the
    app reads a byte too many), and the metrics of every answer."""

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def sending(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        async def reject(code: int, message: str, field: str | None) -> None:
            body = json.dumps({"error": message, "field": field}).encode()
            await sending({"type": "http.response.start", "status": code,
                           "headers": [(b"content-type", b"application/json"),
                                       (b"content-length", str(len(body)).encode())]})
            await sending({"type": "http.response.body", "body": body})

        try:
            if s.token is not None and scope["path"] != "/health":
                auth = dict(scope["headers"]).get(b"authorization", b"")
                given = auth[7:] if auth[:7].lower() == b"bearer " else b""
                if not hmac.compare_digest(given, s.token):
                    return await reject(401, "missing or wrong API token (Authorization: "
                                             "Bearer ...)", "authorization")
            if scope["method"] in ("POST", "PUT", "PATCH"):
                if not any(k == b"content-type" for k, _ in scope["headers"]):
                    # the API speaks JSON only: a body sent without a type (curl -d) is JSON
                    scope = {**scope, "headers": [*scope["headers"],
                                                  (b"content-type", b"application/json")]}
                chunks, size = [], 0
                while True:
                    msg = await receive()
                    if msg["type"] != "http.request":
                        break
                    size += len(msg.get("body", b""))
                    if size <= s.max_body:
                        chunks.append(msg.get("body", b""))
                    # over the limit: the rest is read and dropped (up to 16 times the limit),
                    # so the client gets the 413 rather than a broken pipe
                    if not msg.get("more_body") or size > 16 * s.max_body:
                        break
                if size > s.max_body:
                    return await reject(413, f"body over {s.max_body} bytes", "body")
                whole = b"".join(chunks)
                sent = [False]

                async def replay() -> dict:
                    if not sent[0]:
                        sent[0] = True
                        return {"type": "http.request", "body": whole, "more_body": False}
                    return await receive()

                return await app(scope, replay, sending)
            return await app(scope, receive, sending)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            s.requests.labels(scope.get("method", ""), label, str(status[0])).inc()
            s.latency.labels(label).observe(time.perf_counter() - t0)

    return guarded


def serve(run: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
          token: str | None = None, events: str | Path | None = None, ann: str | None = None,
          ann_min_items: int = 200_000, log_level: str = "info") -> None:
    """Run the service until interrupted (what ``kgrec serve`` calls)."""
    import uvicorn

    service = Service(run, events=events, token=token, ann=ann, ann_min_items=ann_min_items)
    # said whatever the log level: what is served, and where (uvicorn adds its own line)
    print(f"kgrec: serving {service.model_id} ({service.rec.num_users} users, "
          f"{service.rec.num_items} items, {service.applied} logged events replayed from "
          f"{service.events.path}) on http://{host}:{port} (page /, API /docs)",
          file=sys.stderr, flush=True)
    uvicorn.run(create_app(service), host=host, port=port, log_level=log_level,
                access_log=False)
