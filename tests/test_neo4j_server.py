"""The local Neo4j server kgrec runs (`kgrec neo4j start`): each test starts its own real
server in a fresh home on a free port and always stops it; none touches the shared one."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgrec.errors import SchemaError, StoreError
from kgrec.neo4j.server import ADMIN_TOOL, Neo4jServer
from kgrec.schema import check_identifier

pytestmark = pytest.mark.cost(145)  # seconds on 2 idle cores: scheduled by it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(server: Neo4jServer, **start_args) -> Iterator:
    """Start ``server``; stop it however the test ends."""
    try:
        yield server.start(**start_args)
    finally:
        server.stop()


def query_one(uri: str, password: str, cypher: str):
    from neo4j import GraphDatabase

    with GraphDatabase.driver(uri, auth=("neo4j", password)) as driver:
        return driver.execute_query(cypher).records[0][0]


def tcp_states(port: int) -> set[str]:
    """The states (hex, as /proc writes them: 06 TIME-WAIT, 05 FIN-WAIT-2, 0A LISTEN) of the
    TCP sockets whose local port is ``port``."""
    states = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                states.add(fields[3])
    return states


def plain_bind_fails(port: int) -> bool:
    """Whether a bind without SO_REUSEADDR (kgrec's old port check) fails on ``port``."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# ------------------------------------------------------------------ identifiers
def test_an_identifier_is_the_whole_string():
    """``^...$`` let "name\\n" through ("$" matches before a final newline); Neo4j then
    failed on it."""
    assert check_identifier("name_1", "label") == "name_1"
    for bad in ("name\n", "na me", "name\n\n", "1name", ""):
        with pytest.raises(SchemaError, match="is not an identifier"):
            check_identifier(bad, "label")


# ------------------------------------------------------------------ the password
def test_a_fresh_start_keeps_its_secrets(tmp_path, monkeypatch):
    """One fresh server, three findings.

    The password: any local user can read a process's arguments in /proc/<pid>/cmdline.
    Every process's command line is read over and over while `start` runs; the admin tool
    (which sets the password) and the server must be seen, and neither may show the
    password. Its leading dash (neo4j-admin once read one as an option; generated passwords
    hit that one time in 32), quotes, backslash and space must reach Neo4j intact.

    The home: data/dbms/auth.ini holds the password's salted hash; nobody but the user may
    read it, nor anything else in the home, whatever the umask kgrec was started with."""
    password = f"-pw 'single' \"double\" back\\slash {secrets.token_hex(8)}"
    monkeypatch.setenv("KGREC_NEO4J_PASSWORD", password)
    home = tmp_path / "neo4j"
    server = Neo4jServer(home=home, port=free_port())
    seen: set[tuple[int, int, bytes]] = set()  # (pid, parent pid, command line)
    leaks: list[tuple[int, bytes]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                    ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue  # gone meanwhile
                if password.encode() in cmdline:
                    leaks.append((int(proc.name), cmdline))
                seen.add((int(proc.name), ppid, cmdline))  # all: a zombie's is empty
            done.wait(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    old = os.umask(0o022)  # the usual umask: what kgrec must not rely on
    try:
        with running(server) as info:
            done.set()
            watcher.join()
            assert query_one(info.uri, password, "RETURN 1") == 1
            paths = [home, *home.rglob("*")]
    finally:
        os.umask(old)
        done.set()
        watcher.join()
    assert not leaks, f"the password is on the command line of {leaks}"
    me = os.getpid()
    admin = [c for _, ppid, c in seen if ppid == me and ADMIN_TOOL.encode() in c]
    assert admin, "the watcher never saw the admin tool run (it sets the password)"
    assert any(f"--home-dir={home}".encode() in c for _, ppid, c in seen if ppid == me)
    auth = home / "data" / "dbms" / "auth.ini"
    assert home / "data" in paths and auth in paths
    loose = [f"{p.relative_to(tmp_path)} {stat.filemode(p.lstat().st_mode)}" for p in paths
             if p.exists() and not p.is_symlink() and p.lstat().st_mode & 0o077]
    assert not loose, f"readable by group or others: {loose}"


# ------------------------------------------------------------------ the port
def test_connections_lingering_on_the_port_do_not_stop_a_start(tmp_path):
    """A crashed server leaves its connections in TIME-WAIT / FIN-WAIT on the port for a
    minute; a plain bind fails on them, the server itself binds fine. kgrec used to refuse
    ("port is taken") with nothing listening. Made here: one connection closed server side
    first (TIME-WAIT), one whose client stays (FIN-WAIT-2), then the listener closed."""
    port = free_port()
    with socket.socket() as listener:
        # as a JVM's listener has it: the connections it accepts inherit SO_REUSEADDR, and
        # Linux lets a bind with SO_REUSEADDR share a port only with sockets that had it too
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        first = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()
        first.recv(1)  # its FIN has arrived: closing now leaves the server side in TIME-WAIT
        first.close()
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()
    try:
        assert "06" in tcp_states(port) and "0A" not in tcp_states(port)
        assert plain_bind_fails(port)  # what the old check saw
        lines: list[str] = []
        server = Neo4jServer(home=tmp_path / "neo4j", port=port)
        with running(server, progress=lines.append, report_every=2.0) as info:
            assert query_one(info.uri, server.password(), "RETURN 1") == 1
    finally:
        client.close()
    # waited without a word before; now says so every report_every seconds
    assert any(line.startswith("Neo4j still starting (waiting for Bolt on") for line in lines)


def test_a_server_killed_mid_load(tmp_path):
    """kill -9 of the server while `kgrec load` writes, with the client still connected.

    The load used to end in a raw IncompleteCommit traceback; it must end in one line
    saying what to do. The start right after (same port: the dead server's connections
    linger on it) must recover the database, say so, and the same load run again must end
    with exact counts."""
    import subprocess
    import sys
    import time

    import kgrec
    from kgrec.neo4j.server import _Recovery
    from kgrec.store.neo4j import META_BATCH, Neo4jStore
    from tests.conftest import planted_ratings, write_kgcn
    from tests.test_neo4j import expected_counts

    # a generated dataset of ~27,000 interactions, loaded in batches of 500: the kill lands
    # mid-load, and the rerun is quick
    recipe = write_kgcn(tmp_path / "planted", planted_ratings(n_users=1000))

    port = free_port()
    server = Neo4jServer(home=tmp_path / "neo4j", port=port)
    info = server.start()
    # the client gives up on the dead server after 3 s of retries (the default 30 s would
    # only make the test wait)
    env = dict(os.environ, KGREC_NEO4J_PASSWORD=info.password, KGREC_NEO4J_RETRY_SECONDS="3")
    cmd = [sys.executable, "-m", "kgrec.cli", "load", str(recipe), "--into", info.uri,
           "--batch-size", "500", "--quiet"]
    try:
        with Neo4jStore(info.uri, info.user, info.password) as st:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and proc.poll() is None:
                if st.run(f"MATCH (b:{META_BATCH}) WHERE b.key STARTS WITH 'e:' "
                          "RETURN count(b) AS c")[0]["c"] >= 3:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, "the load finished before the server could be killed"
            os.kill(info.pid, signal.SIGKILL)
            os.waitpid(info.pid, 0)  # our child: reap it, as a later `kgrec` finds it gone
            _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "committed batches are kept: start it and run the same load again" in err
        lines: list[str] = []
        with running(server, progress=lines.append, report_every=1.0) as again:
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            assert out.returncode == 0, out.stderr
            with Neo4jStore(again.uri, again.user, again.password) as st:
                assert st.counts() == expected_counts(kgrec.load_recipe(recipe))
    finally:
        server.stop()
    recovery = _Recovery()
    recovery.read((tmp_path / "neo4j" / "logs" / "debug.log").read_text().splitlines())
    assert recovery.note() == "recovered database 'neo4j' after an unclean shutdown"
    assert any(line.startswith("Neo4j still starting (") for line in lines)


def test_start_on_a_taken_port_names_the_port_and_its_holder(tmp_path):
    """A server that cannot bind used to exit with an empty console log; worse, another
    server on the port could answer the readiness ping. Nothing is written to the home."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = Neo4jServer(home=tmp_path / "neo4j", port=port)
        with pytest.raises(StoreError, match=rf"127\.0\.0\.1:{port} is taken") as err:
            s.start()
    assert f"process {os.getpid()} " in str(err.value)
    assert "KGREC_NEO4J_PORT" in str(err.value)
    assert not (tmp_path / "neo4j").exists()
