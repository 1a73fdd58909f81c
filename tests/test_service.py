"""``kgrec serve`` as a real process over real HTTP on loopback: rankings, 4xx errors that
name the field, clicks that change the next answer and survive ``kill -9``, new items from
text, tokens, metrics, and a reload under load with no failed request."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import kgrec

pytestmark = pytest.mark.cost(45)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """JSON over HTTP with the standard library (no client library between test and
    service)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: object = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, object]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        h = {"content-type": "application/json", **(headers or {})}
        if self.token:
            h["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
                status = r.status
        except urllib.error.HTTPError as e:
            text, status = e.read().decode(), e.code
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    def get(self, path: str, **kw) -> tuple[int, object]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: object = None, **kw) -> tuple[int, object]:
        return self.call("POST", path, body, **kw)


@contextmanager
def service(run: Path, *extra: str, token: str | None = None, events: Path | None = None):
    """``kgrec serve RUN`` in a process of its own, until the block ends (or it is killed)."""
    port = free_port()
    cmd = [sys.executable, "-m", "kgrec.cli", "serve", str(run), "--port", str(port), *extra]
    if events is not None:
        cmd += ["--events", str(events)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    client = Client(f"http://127.0.0.1:{port}", token)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if client.get("/health")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the service did not start in 90 s")
        time.sleep(0.2)
    client.proc = proc  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def run(lastfm, tmp_path_factory) -> Path:
    """A LightGCN run on Last.FM (names and a knowledge graph to explain by)."""
    split = kgrec.split(lastfm, "random", seed=0)
    cfg = kgrec.Config(model={"name": "lightgcn", "dim": 32},
                       train={"epochs": 6, "eval_every": 3, "device": "cpu", "seed": 0})
    out = tmp_path_factory.mktemp("serve") / "lastfm-lightgcn"
    kgrec.train(split, cfg, progress=False).save(out)
    return out


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """An hgnn run on a planted graph whose items have texts: it places new items."""
    from tests.conftest import planted_ratings, write_kgcn
    from tests.test_aligned import TASTES

    root = tmp_path_factory.mktemp("serve-text")
    names = "id\tname\n" + "".join(f"{i}\t{TASTES[i % 6]}, act {i}\n" for i in range(300))
    graph = kgrec.load_recipe(write_kgcn(root / "planted", planted_ratings(n_users=300),
                                         names=names))
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 16, "hgnn": {"align_epochs": 3}},
                       train={"epochs": 6, "eval_every": 3, "device": "cpu", "seed": 0})
    out = root / "planted-hgnn"
    kgrec.train(kgrec.split(graph, "random", seed=0), cfg, progress=False).save(out)
    return out


def test_rankings_match_the_library_and_bad_input_is_a_4xx_naming_the_field(run, tmp_path):
    rec = kgrec.Recommender.load(run)
    user = rec.user_ids[3]
    with service(run, events=tmp_path / "e.jsonl") as c:
        status, doc = c.get(f"/users/{user}/recommendations?k=5&explain=true")
        assert status == 200
        (want,) = rec.recommend([user], k=5)
        assert [x["id"] for x in doc["items"]] == want.items
        assert [x["name"] for x in doc["items"]] == want.names
        np.testing.assert_allclose([x["score"] for x in doc["items"]], want.scores, atol=1e-5)
        assert all(x["explanation"]["text"] for x in doc["items"])
        graphs = [g for x in doc["items"] for g in x["explanation"]["graphs"]]
        assert graphs, "no recommendation explained by a knowledge-graph path"
        assert graphs[0]["nodes"][0]["kind"] == "user"
        assert graphs[0]["nodes"][-1]["kind"] == "recommended"
        # batched users, and someone new from two artists (the library's answer)
        status, doc = c.post("/recommendations", {"users": rec.user_ids[:3], "k": 4})
        assert status == 200 and [x["user"] for x in doc["lists"]] == rec.user_ids[:3]
        assert [x["id"] for x in doc["lists"][1]["items"]] == rec.recommend(
            [rec.user_ids[1]], k=4)[0].items
        liked = rec.item_ids[:2]
        status, doc = c.post("/recommendations", {"items": liked, "k": 5})
        assert status == 200
        assert [x["id"] for x in doc["lists"][0]["items"]] == rec.recommend_new(liked, 5).items
        assert not set(liked) & {x["id"] for x in doc["lists"][0]["items"]}
        # bad input: a 4xx JSON error naming the field, never a 500
        bad = [
            (c.get("/users/no-such-user/recommendations"), 404, "user_id"),
            (c.get(f"/users/{user}/recommendations?k=0"), 422, "k"),
            (c.get(f"/users/{user}/recommendations?k=50000"), 422, "k"),
            (c.get(f"/users/{user}/recommendations?k=ten"), 422, "k"),
            (c.get(f"/users/{user}/recommendations?domain=films"), 404, "domain"),
            (c.post("/recommendations", {"items": ["2", "no-such-item"]}), 404, "items"),
            (c.post("/recommendations", {"users": [user], "k": float("nan")}), 422, "k"),
            (c.post("/recommendations", raw=b'{"items": ["2"], "k": NaN}'), 422, "k"),
            (c.post("/recommendations", raw=b'{"items": ["2"], "k": 3'), 422, "body"),
            (c.post("/recommendations", {"items": ["2"], "colour": "red"}), 422, "colour"),
            (c.post("/recommendations", {}), 422, "users"),
            (c.post("/recommendations", {"items": ["2"], "profile": {"age": 30}}), 422,
             "profile"),
            (c.post("/interactions", {"user": user, "item": "no-such-item"}), 404, "item"),
            (c.post("/interactions", {"user": user}), 422, "item"),
            (c.post("/interactions", {"events": [{"user": user, "item": "2"},
                                                 {"user": user, "item": "nope"}]}), 404,
             "events.1.item"),
            (c.post("/items", {"id": rec.item_ids[0], "text": "x"}), 409, "id"),
            (c.post("/items", {"id": "new", "text": "   "}), 422, "text"),
            (c.post("/recommendations", raw=b'{"items": ["' + b"x" * (2 << 20) + b'"]}'), 413,
             "body"),
            (c.post("/admin/reload", {"run": str(tmp_path / "nothing")}), 422, "run"),
        ]
        for (status, doc), code, field in bad:
            assert (status, doc.get("field")) == (code, field), (code, field, doc)
            assert "Traceback" not in doc["error"]
        # nothing bad reached the log
        assert not (tmp_path / "e.jsonl").read_text().strip()
        # health, metrics (Prometheus text) and the OpenAPI page
        status, health = c.get("/health")
        assert status == 200 and health["users"] == rec.num_users
        status, text = c.get("/metrics")
        assert status == 200
        assert f'kgrec_model_info{{model="{health["model"]}"}} 1.0' in text
        assert ('kgrec_requests_total{method="GET",route="/users/{user_id}/recommendations",'
                'status="404"} 2.0') in text  # no such user, no such domain
        assert 'kgrec_request_seconds_bucket{le="0.01",route="/recommendations"}' in text
        status, spec = c.get("/openapi.json")
        assert status == 200 and "/interactions" in spec["paths"]


def test_a_click_changes_the_next_answer_and_survives_kill_9(run, tmp_path):
    rec = kgrec.Recommender.load(run)
    user = rec.user_ids[5]
    events = tmp_path / "events.jsonl"
    with service(run, events=events) as c:
        _, before = c.get(f"/users/{user}/recommendations?k=10")
        clicked = before["items"][0]["id"]
        status, ack = c.post("/interactions", {"user": user, "item": clicked,
                                               "behavior": "listen"})
        assert status == 200 and ack["changed"] == [True]
        _, after = c.get(f"/users/{user}/recommendations?k=10")
        assert clicked not in [x["id"] for x in after["items"]]  # seen now
        # the user's vector moved toward what it clicked: the scores changed
        common = {x["id"]: x["score"] for x in before["items"]}
        moved = [abs(x["score"] - common[x["id"]]) for x in after["items"] if x["id"] in common]
        assert moved and max(moved) > 1e-4
        # a user never seen is placed from its first click
        status, ack = c.post("/interactions", {"user": "brand-new", "item": clicked})
        assert status == 200
        assert c.get("/users/brand-new/recommendations?k=3")[0] == 200
        os.kill(c.proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        c.proc.wait(10)  # type: ignore[attr-defined]
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert [(e["user"], e["item"]) for e in lines] == [(user, clicked), ("brand-new", clicked)]
    with service(run, events=events) as c:
        _, hist = c.get(f"/users/{user}")
        assert clicked in [x["id"] for x in hist["items"]]
        _, again = c.get(f"/users/{user}/recommendations?k=10")
        assert again["items"] == after["items"]  # the same vector, rebuilt from the log
        assert c.get("/users/brand-new")[1]["items"] == [{"id": clicked,
                                                          "name": rec.item_names[
                                                              rec.item_ids.index(clicked)]}]


def test_a_new_item_is_placed_from_its_text_and_kept(run, text_run, tmp_path):
    status, doc = _post_item(run, tmp_path)  # lightgcn places no item from text
    assert status == 422 and doc["field"] == "text" and "add_items needs" in doc["error"]
    ids_only, run = run, text_run
    rec = kgrec.Recommender.load(run)
    text = rec.item_names[10]  # a twin of a known item, by its text alone
    # in the library: the user who ranks the new item highest, and that list
    rec.add_items(["fresh-1"], [text], names=["Fresh One"])
    scores = rec.score_users(np.arange(rec.num_users))
    fresh = scores[:, -1:]
    above = (scores > fresh).sum(1)
    user = rec.user_ids[int(above.argmin())]
    k = int(above.min()) + 1  # new items rank low (hgnn's gate): how far down it is
    (want,) = rec.recommend([user], k=k, exclude_seen=False)
    assert want.items[-1] == "fresh-1"
    events = tmp_path / "events.jsonl"
    with service(run, events=events) as c:
        status, doc = c.post("/items", {"id": "fresh-1", "text": text, "name": "Fresh One"})
        assert status == 201 and doc["items"] == rec.num_items
        _, found = c.get("/items?q=fresh-1")
        assert found["items"] == [{"id": "fresh-1", "name": "Fresh One"}]
        _, doc = c.get(f"/users/{user}/recommendations?k={k}&exclude_seen=false")
        assert [x["id"] for x in doc["items"]] == want.items
        np.testing.assert_allclose([x["score"] for x in doc["items"]], want.scores, atol=1e-5)
    with service(run, events=events) as c:  # replayed from the log at start
        assert c.get("/items?q=fresh-1")[1]["items"] == [{"id": "fresh-1", "name": "Fresh One"}]
    # a run that cannot place it skips the event (and says so in its log), and serves
    with service(ids_only, events=events) as c:
        assert c.get("/health")[1]["items"] == kgrec.Recommender.load(ids_only).num_items


def _post_item(run: Path, tmp_path: Path) -> tuple[int, object]:
    with service(run, events=tmp_path / "refused.jsonl") as c:
        got = c.post("/items", {"id": "fresh-1", "text": "a new act"})
    assert not (tmp_path / "refused.jsonl").read_text()  # nothing logged
    return got


def test_reload_under_load_fails_no_request(run, tmp_path):
    other = tmp_path / "retrained"
    shutil.copytree(run, other)
    doc = json.loads((other / "recommender.json").read_text())
    doc["history"].append({"note": "retrained"})  # another run: another model id
    (other / "recommender.json").write_text(json.dumps(doc))
    rec = kgrec.Recommender.load(run)
    with service(run, events=tmp_path / "e.jsonl") as c:
        first = c.get("/health")[1]["model"]
        statuses: list[int] = []
        stop = threading.Event()

        def hammer(n: int) -> None:
            while not stop.is_set():
                statuses.append(c.get(f"/users/{rec.user_ids[n]}/recommendations?k=10")[0])

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        status, swap = c.post("/admin/reload", {"run": str(other)})
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        assert status == 200 and swap["previous"] == first != swap["model"]
        assert c.get("/health")[1]["model"] == swap["model"]
        assert len(statuses) > 20 and set(statuses) == {200}, set(statuses)


def test_a_token_guards_every_request_beyond_loopback(run, tmp_path):
    p = subprocess.run([sys.executable, "-m", "kgrec.cli", "serve", str(run), "--host",
                        "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "needs an API token" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([sys.executable, "-m", "kgrec.cli", "serve", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "not a run written by `kgrec train`" in p.stderr
    token = "s3cret-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    with service(run, "--token-file", str(tmp_path / "token")) as c:
        user = kgrec.Recommender.load(run).user_ids[0]
        path = f"/users/{user}/recommendations?k=3"
        assert c.get(path)[0] == 401
        assert c.get(path, headers={"authorization": "Bearer wrong"})[0] == 401
        assert c.get(path, headers={"authorization": f"Bearer {token}"})[0] == 200
        assert c.post("/admin/reload", headers={})[0] == 401
        assert c.get("/health")[0] == 200  # liveness stays open


def test_the_page_in_a_real_browser(run, tmp_path):
    """The service's page in headless Chromium (Debian's, driven by Selenium): a person picks
    a user and sees their history, the top 10 with names and scores as the library ranks
    them, and explanations drawn as small graphs; then types two liked artists."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as Driver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    rec = kgrec.Recommender.load(run)
    user = rec.user_ids[3]
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Driver(shutil.which("chromedriver")
                                             or "/usr/bin/chromedriver"), options=opts)
    try:
        with service(run, events=tmp_path / "e.jsonl") as c:
            driver.get(c.base + "/")
            wait = WebDriverWait(driver, 30)
            wait.until(ec.text_to_be_present_in_element((By.ID, "model"), "users"))
            driver.find_element(By.ID, "user").send_keys(user)
            driver.find_element(By.ID, "show-user").click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recs li.rec")) == 10)
            (want,) = rec.recommend([user], k=10)
            shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#recs .name")]
            assert shown == want.names
            scores = [float(e.text) for e in driver.find_elements(By.CSS_SELECTOR,
                                                                  "#recs .score")]
            np.testing.assert_allclose(scores, want.scores, atol=1e-3)
            history = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#history li")]
            assert set(history) == {rec.item_names[rec.item_ids.index(x)]
                                    for x in rec.items_of(user)[:50]}
            why = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#recs .why")]
            assert len(why) == 10 and all(why)
            # the explanation graphs: you -> your item (-> entity) -> the recommended item
            graphs = driver.find_elements(By.CSS_SELECTOR, "#recs svg.path")
            assert graphs
            kinds = [e.get_attribute("class") for e in
                     graphs[0].find_elements(By.CSS_SELECTOR, "circle")]
            assert kinds[0] == "node user" and kinds[-1] == "node recommended"
            driver.save_screenshot(str(tmp_path / "page.png"))
            if os.environ.get("KGREC_SCREENSHOT"):
                shutil.copy(tmp_path / "page.png", os.environ["KGREC_SCREENSHOT"])
            # someone new, from two artists typed by name
            liked = [rec.item_names[1], rec.item_names[2]]
            driver.find_element(By.ID, "liked").send_keys(", ".join(liked))
            driver.find_element(By.ID, "show-new").click()
            wait.until(ec.text_to_be_present_in_element((By.ID, "recs-title"), "someone new"))
            new = rec.recommend_new(rec.item_ids[1:3], 10)
            shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#recs .name")]
            assert shown == new.names
            # an unknown user: the error, said on the page
            box = driver.find_element(By.ID, "user")
            box.clear()
            box.send_keys("no-such-user")
            driver.find_element(By.ID, "show-user").click()
            wait.until(ec.text_to_be_present_in_element((By.ID, "status"),
                                                        "unknown user id"))
    finally:
        driver.quit()


def test_the_next_training_run_learns_what_the_service_logged(lastfm, tmp_path):
    """``data.events`` (``kgrec train --events LOG``): the logged items, users and clicks join
    the graph before the split; a torn last line (a crash mid-write) is skipped; a click on
    an item nobody knows is one line naming the file and line."""
    from kgrec.data.prepare import split_for
    from kgrec.ingest.events import with_events
    from kgrec.serve.events import EventLog

    log = EventLog(tmp_path / "events.jsonl")
    log.append([{"type": "item", "id": "fresh-1", "text": "a new band", "name": "Fresh"},
                {"type": "interaction", "user": "brand-new", "item": "fresh-1",
                 "behavior": "listen", "time": 1.8e9},
                {"type": "interaction", "user": lastfm.users.ids[0], "item": "fresh-1"}])
    log.close()
    with (tmp_path / "events.jsonl").open("ab") as f:
        f.write(b'{"seq": 4, "type": "interac')  # torn: never acknowledged
    g = with_events(lastfm, tmp_path / "events.jsonl")
    assert (g.num_users, g.num_items) == (lastfm.num_users + 1, lastfm.num_items + 1)
    item = g.items.lookup["fresh-1"]
    assert g.items.attrs["name"][item] == "Fresh" and g.items.attrs["text"][item] == "a new band"
    inter = g.interactions
    assert len(inter) == len(lastfm.interactions) + 2
    assert g.users.ids[inter.src[-2]] == "brand-new" and inter.dst[-1] == item
    assert inter.attrs["behavior"][-2] == "listen"
    g.validate()
    cfg = kgrec.Config(data={"dataset": "lastfm-hetrec-kg", "events":
                             str(tmp_path / "events.jsonl")}).data
    assert split_for(cfg).graph.num_items == lastfm.num_items + 1
    (tmp_path / "bad.jsonl").write_text('{"seq": 1, "type": "interaction", "user": "u", '
                                        '"item": "nobody-knows"}\n')
    with pytest.raises(kgrec.DataFormatError, match=r"bad.jsonl:1: item 'nobody-knows'"):
        with_events(lastfm, tmp_path / "bad.jsonl")


def test_a_command_that_ranks_imports_neither_transformers_nor_pyg(run):
    """``import kgrec`` and ``kgrec recommend`` load torch, not the text model's library nor
    PyTorch Geometric (seconds of a command's start): only training and placing new items
    from text need them."""
    code = ("import sys\nimport kgrec\nassert 'torch' not in sys.modules\n"
            "from kgrec.cli import main\n"
            f"main(['recommend', {str(run)!r}, '--user', '3', '--k', '2'])\n"
            "heavy = [m for m in ('transformers', 'torch_geometric') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "top 2 for user 3" in p.stdout
