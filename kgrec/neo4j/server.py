"""A real Neo4j 5.26 LTS community server for development, tests and CI, run by kgrec itself.

``kgrec neo4j start`` fetches the server's jars from Maven Central on first use (Maven, into
``<home>/lib``), writes ``<home>/conf/neo4j.conf`` (loopback only, authentication on), sets
the initial password, starts ``org.neo4j.server.CommunityEntryPoint`` in the background and
waits until Bolt answers. The password comes from ``KGREC_NEO4J_PASSWORD`` or is generated
once and kept in ``<home>/password`` (mode 0600); it is never logged.

Production users point kgrec at their own Neo4j (server, cluster, Aura) with a URI instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kgrec.errors import StoreError
from kgrec.paths import home_dir

log = logging.getLogger(__name__)

NEO4J_VERSION = "5.26.30"
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
USER = "neo4j"


def default_home() -> Path:
    """``$KGREC_NEO4J_HOME``, else ``$KGREC_HOME/neo4j``."""
    env = os.environ.get("KGREC_NEO4J_HOME")
    return Path(env) if env else home_dir() / "neo4j"


def default_port() -> int:
    """``$KGREC_NEO4J_PORT``, else 7687."""
    return int(os.environ.get("KGREC_NEO4J_PORT", "7687"))


def jar_dir() -> Path:
    """Where the server jars are kept, shared by every server home (``$KGREC_NEO4J_LIB``, else
    ``~/.cache/kgrec/neo4j-lib/<version>``)."""
    env = os.environ.get("KGREC_NEO4J_LIB")
    return Path(env) if env else Path.home() / ".cache" / "kgrec" / "neo4j-lib" / NEO4J_VERSION


@dataclass
class ServerInfo:
    """Where a running server listens, and how to log in."""

    uri: str
    user: str
    password: str
    pid: int
    home: Path

    def __repr__(self) -> str:  # never print the password
        return f"ServerInfo(uri={self.uri!r}, user={self.user!r}, pid={self.pid}, home={self.home})"


class Neo4jServer:
    """Manage one local Neo4j server rooted at ``home``.

    Args:
        home: the server's folder (jars, config, data, logs, pid and password files).
        port: Bolt port on 127.0.0.1.
        heap: JVM heap (``-Xmx``), e.g. ``"1g"``.
    """

    def __init__(self, home: str | Path | None = None, port: int | None = None,
                 heap: str = "1g", pagecache: str = "512m") -> None:
        self.home = Path(home) if home is not None else default_home()
        self.port = port if port is not None else default_port()
        self.heap = heap
        self.pagecache = pagecache

    # ------------------------------------------------------------------ paths
    @property
    def lib(self) -> Path:
        return jar_dir()

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "neo4j.pid"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ setup
    def fetch(self) -> Path:
        """Copy the server jars from Maven Central into :attr:`lib` (once)."""
        marker = self.lib / ".complete"
        if marker.is_file():
            return self.lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StoreError("Maven (mvn) is needed once to fetch the Neo4j server jars; "
                             "install Maven or point kgrec at an existing Neo4j with --uri")
        tmp = self.lib.with_name(self.lib.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)  # copied whole, then renamed: never a half set of jars
        pom = Path(__file__).with_name("pom.xml")
        log.info("fetching Neo4j %s jars with Maven into %s", NEO4J_VERSION, self.lib)
        proc = subprocess.run([mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                               f"-Dneo4j.version={NEO4J_VERSION}",
                               f"-DoutputDirectory={tmp}"], capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError("could not fetch the Neo4j jars with Maven:\n"
                             + (proc.stdout + proc.stderr)[-2000:])
        (tmp / ".complete").write_text(NEO4J_VERSION)
        shutil.rmtree(self.lib, ignore_errors=True)
        tmp.rename(self.lib)
        return self.lib

    def password(self) -> str:
        """``KGREC_NEO4J_PASSWORD``, or the generated one kept in :attr:`password_file`."""
        env = os.environ.get("KGREC_NEO4J_PASSWORD")
        if env:
            if len(env) < 8:
                raise StoreError("KGREC_NEO4J_PASSWORD must have at least 8 characters "
                                 "(Neo4j's minimum)")
            return env
        if self.password_file.is_file():
            return self.password_file.read_text().strip()
        self.home.mkdir(parents=True, exist_ok=True)
        # starts with a letter: a leading "-" would read as an option on neo4j-admin's
        # command line (one in 32 token_urlsafe strings starts with one)
        pw = secrets.choice("abcdefghijkmnpqrstuvwxyz") + secrets.token_urlsafe(18)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pw)
        return pw

    def _write_conf(self) -> None:
        conf = self.home / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        for d in ("data", "logs", "plugins", "import", "run", "licenses"):
            (self.home / d).mkdir(parents=True, exist_ok=True)
        lines = [
            "# written by kgrec; regenerated on every `kgrec neo4j start`",
            "server.default_listen_address=127.0.0.1",
            f"server.bolt.listen_address=127.0.0.1:{self.port}",
            "server.bolt.enabled=true",
            "server.http.enabled=false",
            "server.https.enabled=false",
            "dbms.security.auth_enabled=true",
            f"server.directories.data={self.home / 'data'}",
            f"server.directories.logs={self.home / 'logs'}",
            f"server.directories.plugins={self.home / 'plugins'}",
            f"server.directories.import={self.home / 'import'}",
            f"server.directories.run={self.home / 'run'}",
            f"server.directories.licenses={self.home / 'licenses'}",
            f"server.memory.pagecache.size={self.pagecache}",
            "dbms.usage_report.enabled=false",
            "db.tx_log.rotation.retention_policy=100M size",
        ]
        (conf / "neo4j.conf").write_text("\n".join(lines) + "\n")

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java:
            raise StoreError("Java 17 is needed to run the Neo4j server (no `java` on PATH)")
        return java

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NEO4J_HOME"] = str(self.home)
        env["NEO4J_CONF"] = str(self.home / "conf")
        return env

    def _classpath(self) -> str:
        return str(self.lib / "*")

    def _set_initial_password(self, password: str) -> None:
        # Only possible before the first start; afterwards the stored hash stays.
        if (self.home / "data" / "dbms" / "auth.ini").exists() or \
                (self.home / "data" / "databases" / "system").exists():
            return
        proc = subprocess.run([self._java(), "-cp", self._classpath(), ADMIN_TOOL, "dbms",
                               "set-initial-password", "--", password], env=self._env(),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).replace(password, "***")
            raise StoreError(f"neo4j-admin set-initial-password failed:\n{out[-2000:]}")

    # ------------------------------------------------------------------ lifecycle
    def running_pid(self) -> int | None:
        """The server's pid if its process is alive, else ``None`` (stale pid files removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            self.pid_file.unlink(missing_ok=True)
            return None
        except PermissionError:
            return pid
        return pid

    def info(self) -> ServerInfo:
        pid = self.running_pid()
        if pid is None:
            raise StoreError(f"no kgrec Neo4j server is running (home {self.home}); "
                             "start one with `kgrec neo4j start`")
        port_file = self.home / "run" / "port"
        port = int(port_file.read_text()) if port_file.is_file() else self.port
        return ServerInfo(f"bolt://127.0.0.1:{port}", USER, self.password(), pid, self.home)

    def start(self, timeout: float = 180.0) -> ServerInfo:
        """Start the server (fetching jars on first use) and wait until Bolt answers.

        Raises :class:`StoreError` if one is already running from this home; the caller
        decides whether that is fine (``kgrec neo4j start`` just says so).
        """
        pid = self.running_pid()
        if pid is not None:
            raise ServerAlreadyRunning(f"a kgrec Neo4j server is already running "
                                       f"(pid {pid}, {self.info().uri})")
        # Checked first: a server that cannot bind exits with an empty console log, and a
        # different server already on the port could answer our readiness ping.
        _check_port_free(self.port)
        self.fetch()
        self._write_conf()
        password = self.password()
        self._set_initial_password(password)
        log_path = self.home / "logs" / "console.log"
        cmd = [self._java(), f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
               "-XX:+ExitOnOutOfMemoryError", "-Dfile.encoding=UTF-8", "-cp",
               self._classpath(), ENTRY_POINT, f"--home-dir={self.home}",
               f"--config-dir={self.home / 'conf'}"]
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self._env(),
                                    start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        (self.home / "run" / "port").write_text(str(self.port))
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                tail = log_path.read_text(errors="replace")[-3000:]
                raise StoreError(f"the Neo4j server exited with status {proc.returncode}; "
                                 f"end of {log_path}:\n{tail}")
            try:
                _ping(self.uri, USER, password)
                log.info("Neo4j %s is up at %s (pid %d)", NEO4J_VERSION, self.uri, proc.pid)
                return ServerInfo(self.uri, USER, password, proc.pid, self.home)
            except Exception as exc:  # not up yet: connection refused / service unavailable
                last = exc
                time.sleep(1.0)
        self.stop()
        raise StoreError(f"the Neo4j server did not answer on {self.uri} within {timeout:.0f}s "
                         f"({type(last).__name__}); see {log_path}")

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the server cleanly (SIGTERM, then SIGKILL after ``timeout``); ``False`` if none
        was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.3)
        else:
            log.warning("Neo4j (pid %d) did not stop within %.0fs; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


class ServerAlreadyRunning(StoreError):
    """``start`` found a server running from the same home."""


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # reap it if it is our child
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _check_port_free(port: int) -> None:
    """Raise :class:`StoreError` naming the port (and its holder's pid, where Linux tells)
    if something already listens on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return
        except OSError as exc:
            reason = exc.strerror or str(exc)
    holder = _listening_pid(port)
    who = f"process {holder[0]} ({holder[1]})" if holder else "another process"
    raise StoreError(f"cannot start Neo4j: 127.0.0.1:{port} is taken ({reason}) by {who}; "
                     "stop it, or choose another port with KGREC_NEO4J_PORT or --port")


def _listening_pid(port: int) -> tuple[int, str] | None:
    """``(pid, command name)`` of the process listening on TCP ``port``, from ``/proc``;
    ``None`` where that cannot be read (not Linux, another user's process)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local address "ADDR:PORT" in hex, state 0A = LISTEN
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    name = (proc / "comm").read_text().strip()
                    return int(proc.name), name
    return None


def _ping(uri: str, user: str, password: str) -> None:
    from neo4j import GraphDatabase

    with GraphDatabase.driver(uri, auth=(user, password), connection_timeout=3.0) as driver:
        driver.verify_connectivity()
