"""A real Neo4j 5.26 LTS community server for development, tests and CI, run by kgrec itself.

``kgrec neo4j start`` fetches the server's jars from Maven Central on first use (Maven, into
a shared jar folder), writes ``<home>/conf/neo4j.conf`` (loopback only, authentication on),
sets the initial password, starts ``org.neo4j.server.CommunityEntryPoint`` in the background
and waits until Bolt answers, saying every few seconds that it still waits (a server that
crashed replays its transaction log first, which can take minutes). The password comes from
``KGREC_NEO4J_PASSWORD`` or is generated once and kept in ``<home>/password``; it is never
logged, and never on a command line (where any local user could read it in ``/proc``).

The home is private to the user: folders 0700, files 0600, and the JVMs run with umask 077,
so what the server writes itself (``data/dbms/auth.ini``, the salted password hash; the
stores; the logs) is private too.

Production users point kgrec at their own Neo4j (server, cluster, Aura) with a URI instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kgrec.errors import StoreError
from kgrec.paths import home_dir

log = logging.getLogger(__name__)

NEO4J_VERSION = "5.26.30"
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
USER = "neo4j"
# Files and folders under a server home carry no group or other permission bits.
PRIVATE_UMASK = 0o077
HOME_DIRS = ("conf", "data", "logs", "plugins", "import", "run", "licenses")


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
        self._make_private()
        # starts with a letter: a leading "-" once read as an option to neo4j-admin (one in
        # 32 token_urlsafe strings starts with one); harmless now, but easier to copy around
        pw = secrets.choice("abcdefghijkmnpqrstuvwxyz") + secrets.token_urlsafe(18)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pw)
        return pw

    def _make_private(self) -> None:
        """Create the home and its folders with mode 0700, and take group/other bits off a
        home made before kgrec did so (its folders, the password and ``auth.ini``)."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        # chmod as well as mkdir's mode: mkdir leaves an existing folder as it is. A private
        # home alone keeps other users out of everything below it; the rest is belt and braces
        # for files someone copies out with their modes.
        os.chmod(self.home, 0o700)
        for d in HOME_DIRS:
            (self.home / d).mkdir(mode=0o700, exist_ok=True)
            os.chmod(self.home / d, 0o700)
        dbms = self.home / "data" / "dbms"
        for path in (dbms, dbms / "auth.ini", self.password_file):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path, 0o700 if path.is_dir() else 0o600)

    def _write_conf(self) -> None:
        self._make_private()
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
        _write_private(self.home / "conf" / "neo4j.conf", "\n".join(lines) + "\n")

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java:
            raise StoreError("Java 17 is needed to run the Neo4j server (no `java` on PATH)")
        return java

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # the JVMs have no use for it; one copy fewer of the password in the process table
        env.pop("KGREC_NEO4J_PASSWORD", None)
        env["NEO4J_HOME"] = str(self.home)
        env["NEO4J_CONF"] = str(self.home / "conf")
        return env

    def _classpath(self) -> str:
        return str(self.lib / "*")

    def _set_initial_password(self, password: str) -> None:
        """Have ``neo4j-admin dbms set-initial-password`` write the password's salted hash.

        The password travels in an argument file (``@file``, which every neo4j-admin command
        reads: picocli's "AtFiles", documented by Neo4j), never on the command line: any local
        user can read a process's arguments in ``/proc/<pid>/cmdline``. The file is created
        0600 inside the 0700 home and removed as soon as the tool exits. The 5.26 command takes
        the password only as a parameter (no stdin, no password file).

        Setting it over Bolt after a first start with the default ``neo4j``/``neo4j`` instead
        (``ALTER CURRENT USER SET PASSWORD``) was rejected: until kgrec changed it, any local
        user could log in with the well-known default and set a password of their own first.
        """
        # Only possible before the first start; afterwards the stored hash stays.
        if (self.home / "data" / "dbms" / "auth.ini").exists() or \
                (self.home / "data" / "databases" / "system").exists():
            return
        fd, args_path = tempfile.mkstemp(prefix=".set-initial-password-", suffix=".args",
                                         dir=self.home)  # mkstemp: mode 0600, a fresh name
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                # "--": a password that begins with "-" is the parameter, not an option
                f.write("-- " + _at_file_quote(password) + "\n")
            # file.encoding: picocli reads the @file in the JVM's default charset, which is
            # ASCII under a POSIX locale on Java 17; the file is UTF-8
            proc = subprocess.run([self._java(), "-Dfile.encoding=UTF-8", "-cp",
                                   self._classpath(), ADMIN_TOOL, "dbms", "set-initial-password",
                                   f"@{args_path}"], env=self._env(), capture_output=True,
                                  text=True, umask=PRIVATE_UMASK)
        finally:
            Path(args_path).unlink(missing_ok=True)
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

    def start(self, timeout: float = 180.0, progress: Callable[[str], None] | None = None,
              report_every: float = 10.0) -> ServerInfo:
        """Start the server (fetching jars on first use) and wait until Bolt answers.

        Args:
            timeout: seconds to wait for Bolt before stopping the server and giving up.
            progress: called every ``report_every`` seconds of waiting with a line saying
                the server is still starting, and why where its debug log tells (recovery
                after a crash); default: logged at INFO.
            report_every: seconds between those lines.

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
        # only what this start writes
        debug_log = _LogTail(self.home / "logs" / "debug.log")
        user_log = _LogTail(self.home / "logs" / "neo4j.log")
        cmd = [self._java(), f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
               "-XX:+ExitOnOutOfMemoryError", "-Dfile.encoding=UTF-8", "-cp",
               self._classpath(), ENTRY_POINT, f"--home-dir={self.home}",
               f"--config-dir={self.home / 'conf'}"]
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as out:
            # umask: the server creates its stores, logs and auth.ini private to the user
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self._env(),
                                    start_new_session=True, umask=PRIVATE_UMASK)
        _write_private(self.pid_file, str(proc.pid))
        _write_private(self.home / "run" / "port", str(self.port))
        report = progress or log.info
        started = time.monotonic()
        deadline = started + timeout
        next_report = started + report_every
        recovery = _Recovery()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if time.monotonic() >= next_report:
                # a restart after a crash replays the transaction log before Bolt opens
                # (75 s measured); say so rather than wait without a word
                recovery.read(debug_log.new_lines())
                why = recovery.note() or f"waiting for Bolt on {self.uri}"
                report(f"Neo4j still starting ({why}), {time.monotonic() - started:.0f} s so far")
                next_report = time.monotonic() + report_every
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                # the server logs to neo4j.log, not its console, once it runs
                said = "\n".join(user_log.new_lines())
                if "Address already in use" in said:
                    raise StoreError(f"the Neo4j server could not bind 127.0.0.1:{self.port}: "
                                     "a process took it meanwhile, or connections of an "
                                     "earlier one linger there (a minute); retry in a minute, "
                                     "or choose another port with KGREC_NEO4J_PORT or --port")
                where, tail = (user_log.path, said) if said else \
                    (log_path, log_path.read_text(errors="replace"))
                raise StoreError(f"the Neo4j server exited with status {proc.returncode}; "
                                 f"end of {where}:\n{tail[-3000:]}")
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


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (also when the file was there before)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def _at_file_quote(arg: str) -> str:
    """``arg`` as one quoted argument of a picocli ``@file``: backslash, double quote, CR and
    LF escaped (a raw line break would end the quoted argument); all else as it is."""
    escaped = (arg.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r"))
    return f'"{escaped}"'


class _LogTail:
    """The complete lines a growing log file gained since the last call (from its size when
    made): cheap however long the file, and never a half-written line."""

    def __init__(self, path: Path, limit: int = 1 << 20) -> None:
        self.path = path
        self.limit = limit
        try:
            self.offset = path.stat().st_size
        except OSError:
            self.offset = 0

    def new_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:  # rotated: a fresh file
                    self.offset = 0
                start = max(self.offset, size - self.limit)
                f.seek(start)
                data = f.read(size - start)
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset = start + end
        return data[:end].decode("utf-8", errors="replace").splitlines()


class _Recovery:
    """What the server's debug log says about crash recovery, as one short note."""

    # Neo4j 5.26's debug.log, e.g. "[o.n.k.d.Database] [neo4j/0754aaab] Recovery required
    # from position ...", "[o.n.k.r.Recovery] [neo4j/0754aaab]  80% completed",
    # "[o.n.k.d.Database] [neo4j/0754aaab] Recovery in 'full' mode completed. ..."
    REQUIRED = re.compile(r"\[([\w.-]+)/[0-9a-f]+\]\s+Recovery required")
    PERCENT = re.compile(r"\[o\.n\.k\.r\.Recovery\] \[([\w.-]+)/[0-9a-f]+\]\s+(\d+)% completed")
    DONE = re.compile(r"\[([\w.-]+)/[0-9a-f]+\]\s+Recovery in '\w+' mode completed")

    def __init__(self) -> None:
        self.database: str | None = None
        self.percent: int | None = None
        self.done = False

    def read(self, lines: list[str]) -> None:
        for line in lines:
            if m := self.REQUIRED.search(line):
                self.database, self.percent, self.done = m[1], 0, False
            elif m := self.PERCENT.search(line):
                self.database, self.percent, self.done = m[1], int(m[2]), False
            elif m := self.DONE.search(line):
                self.database, self.percent, self.done = m[1], 100, True

    def note(self) -> str | None:
        """``None`` while the log has said nothing about recovery."""
        if self.database is None:
            return None
        if self.done:
            return f"recovered database {self.database!r} after an unclean shutdown"
        return (f"recovering database {self.database!r} from its transaction log after an "
                f"unclean shutdown, {self.percent}% done")


def _check_port_free(port: int) -> None:
    """Raise :class:`StoreError` naming the port (and its holder's pid, where Linux tells)
    if something already listens on ``127.0.0.1:port``.

    Asks whether a connection is accepted (or ``/proc`` shows a listener) rather than trying
    to bind: a plain bind also fails while connections of a crashed server linger on the port
    in TIME-WAIT or FIN-WAIT (a minute), although the server itself, binding with
    SO_REUSEADDR as the JVM does, starts fine then.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0):
            accepts = True
    except OSError:  # refused: nobody there; a timeout: maybe a listener with a full backlog
        accepts = False
    if not accepts and not _listen_inodes(port):
        return
    holder = _listening_pid(port)
    who = f"process {holder[0]} ({holder[1]})" if holder else "another process"
    raise StoreError(f"cannot start Neo4j: 127.0.0.1:{port} is taken by {who}, which listens "
                     "there; stop it, or choose another port with KGREC_NEO4J_PORT or --port")


# Local addresses whose listeners clash with one on 127.0.0.1 (hex as /proc/net/tcp* writes
# them): 127.0.0.1, 0.0.0.0, :: and ::ffff:127.0.0.1 (how the JVM listens on 127.0.0.1).
_CLASHING = {"0100007F", "00000000", "0" * 32, "0000000000000000FFFF00000100007F"}


def _listen_inodes(port: int) -> set[str]:
    """The ``socket:[inode]`` names of sockets listening on ``127.0.0.1:port`` or on a
    wildcard address, from ``/proc`` (empty where it cannot be read)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local address "ADDR:PORT" in hex, state 0A = LISTEN
                addr, hex_port = fields[1].rsplit(":", 1)
                if int(hex_port, 16) == port and fields[3] == "0A" and addr in _CLASHING:
                    inodes.add(f"socket:[{fields[9]}]")
    return inodes


def _listening_pid(port: int) -> tuple[int, str] | None:
    """``(pid, command name)`` of the process listening on TCP ``port``, from ``/proc``;
    ``None`` where that cannot be read (not Linux, another user's process)."""
    inodes = _listen_inodes(port)
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
