"""Real Redis servers for the tests, and small stdlib TCP stand-ins for faults.

``RedisServer`` runs a private ``redis-server`` on a free loopback port and stops,
kills, restarts, freezes (SIGSTOP) and thaws it by the PID it started, never by name.
``Proxy`` forwards to a real server and can lose one reply on the way back, after the
server executed the command. ``SilentServer`` accepts connections and never answers;
``SlammingServer`` accepts and hangs up at once. Both count the connections they took.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import redis

REDIS_SERVER = shutil.which("redis-server")
READY = "Ready to accept connections"
# What the raw client of ``commandstats``/``reset_stats`` itself sends.
_OBSERVER = frozenset({"hello", "info", "config|resetstat"})


# Every server process started and not yet stopped, by PID: an interrupted or crashed test
# run still stops them when the interpreter exits.
_RUNNING: dict[int, subprocess.Popen[bytes]] = {}


@atexit.register
def stop_all() -> None:
    """SIGKILL every server this process started and has not stopped (by PID)."""
    for pid, process in list(_RUNNING.items()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        _RUNNING.pop(pid, None)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop_on_sigterm() -> None:
    """Make SIGTERM (a CI timeout, a kill) end the run through SystemExit, so that the fixtures'
    finalizers and ``stop_all`` still stop the servers; by default it ends Python at once."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One private redis-server process on 127.0.0.1."""

    def __init__(
        self, workdir: Path, *args: str, port: int | None = None, tls: bool = False, binary: str | None = None
    ) -> None:
        self.binary = binary or REDIS_SERVER
        if self.binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls = tls
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"redis-{self.port}.log"
        self.password: str | None = None
        for flag, value in itertools.pairwise(args):
            if flag == "--requirepass":
                self.password = value

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        assert self.binary is not None
        port = ["--port", "0", "--tls-port", str(self.port)] if self.tls else ["--port", str(self.port)]
        return [
            self.binary,
            *port,
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log),
            *self.args,
        ]

    def start(self, timeout: float = 10.0, *, until: str = READY) -> RedisServer:
        """Start, and wait for the log line *until* (by default: ready, its data loaded)."""
        assert self.process is None, "already running"
        self.log.write_text("")
        _stop_on_sigterm()
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        _RUNNING[self.process.pid] = self.process
        deadline = time.monotonic() + timeout
        while until not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None:
                _RUNNING.pop(self.process.pid, None)
                self.process = None
                raise RuntimeError(f"redis-server exited at start: {self.log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not become ready: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.005)
        return self

    def _end(self, sig: int) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        _RUNNING.pop(process.pid, None)

    def stop(self) -> None:
        """SIGTERM, and wait for the process to exit."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the server dies with no goodbye to its clients."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nobody answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOPped for the duration of the block."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    @contextlib.contextmanager
    def busy(self, threshold_ms: int = 50) -> Iterator[None]:
        """A Lua script loops on the server: after *threshold_ms* every other command gets BUSY.

        ``SCRIPT KILL`` (``kill_script``) ends it; so does the end of the block.
        """
        with self.client() as raw:
            raw.config_set("busy-reply-threshold", threshold_ms)
        looping = threading.Thread(target=self._loop_a_script, daemon=True)
        looping.start()
        try:
            with self.client() as raw:
                while not self._busy(raw):
                    time.sleep(0.005)  # the script has not started yet
            yield
        finally:
            self.kill_script()
            looping.join(10)
            with self.client() as raw:
                raw.config_set("busy-reply-threshold", 5000)

    @staticmethod
    def _busy(raw: redis.Redis) -> bool:
        try:
            raw.ping()
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith("BUSY"):
                return True
            raise
        return False

    def _loop_a_script(self) -> None:
        with self.client(socket_timeout=None) as raw, contextlib.suppress(redis.exceptions.ResponseError):
            raw.eval("while true do end", 0)  # ended by SCRIPT KILL: "Script killed by user"

    def kill_script(self) -> None:
        """End a running read-only script (nothing to do when none runs), and wait until it has ended."""
        with self.client() as raw:
            with contextlib.suppress(redis.exceptions.ResponseError):  # NOTBUSY
                raw.script_kill()
            while True:  # the script stops at its next check, after SCRIPT KILL has answered
                try:
                    raw.ping()
                    return
                except redis.exceptions.ResponseError:
                    time.sleep(0.005)

    @contextlib.contextmanager
    def client(self, **kwargs: Any) -> Iterator[redis.Redis]:
        """A raw redis-py client, to look at the server from outside the backend."""
        options: dict[str, Any] = {"password": self.password, "socket_timeout": 5, **kwargs}
        with redis.Redis(host="127.0.0.1", port=self.port, **options) as raw:
            yield raw

    def commandstats(self) -> dict[str, int]:
        """Calls per command since the last ``CONFIG RESETSTAT``, less the observer's own."""
        return {name: n for name, n in self.commandstats_all().items() if name not in _OBSERVER}

    def commandstats_all(self) -> dict[str, int]:
        """Calls per command since the last ``CONFIG RESETSTAT`` (the INFO that reads them not yet counted)."""
        with self.client() as raw:
            stats = raw.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}

    def reset_stats(self) -> None:
        with self.client() as raw:
            raw.config_resetstat()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Listener:
    """A loopback TCP server on its own thread; subclasses decide what a connection gets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _serve(self) -> None:
        self.sock.settimeout(0.02)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        with self._lock:
            for conn in self._conns:
                conn.close()


class SilentServer(_Listener):
    """Accepts every connection, reads what comes, never answers."""

    def handle(self, conn: socket.socket) -> None:
        pass  # kept open (and unread) until the end: the client waits for its socket timeout


class SlammingServer(_Listener):
    """Accepts every connection and closes it at once: a server dying as you reach it."""

    def handle(self, conn: socket.socket) -> None:
        conn.close()


class Proxy(_Listener):
    """Forwards to a real server; ``lose_reply_to(marker)`` drops the reply to the next
    request containing *marker* (the server has executed it) and hangs up on the client."""

    def __init__(self, target_port: int) -> None:
        super().__init__()
        self.target_port = target_port
        self._marker: bytes | None = None
        self.lost_replies = 0
        self._workers: list[threading.Thread] = []

    def lose_reply_to(self, marker: bytes) -> None:
        self._marker = marker

    def handle(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        with self._lock:
            self._conns.append(upstream)
        worker = threading.Thread(target=self._pump, args=(conn, upstream), daemon=True)
        self._workers.append(worker)
        worker.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        losing = False
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        self._hang_up(client, upstream)
                        return
                    if sock is client:
                        marker = self._marker
                        if marker is not None and marker in data:
                            self._marker = None
                            losing = True
                        upstream.sendall(data)
                    elif losing:
                        # The server has executed the request and answered: the answer is lost.
                        with self._lock:
                            self.lost_replies += 1
                        self._hang_up(client, upstream)
                        return
                    else:
                        client.sendall(data)

    @staticmethod
    def _hang_up(*socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __exit__(self, *exc_info: object) -> None:
        super().__exit__(*exc_info)
        for worker in self._workers:
            worker.join(5)


def openssl(*args: str | os.PathLike[str], cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", f"{name}.crt", cwd=folder)  # fmt: skip
    return {name: folder / name for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


def tls_args(certs: dict[str, Path], *, auth_clients: str = "yes") -> Sequence[str]:
    return (
        "--tls-cert-file", str(certs["server.crt"]),
        "--tls-key-file", str(certs["server.key"]),
        "--tls-ca-cert-file", str(certs["ca.crt"]),
        "--tls-auth-clients", auth_clients,
    )  # fmt: skip


class Monitor:
    """``MONITOR`` on a raw socket: every command the server runs, with the client that sent it."""

    def __init__(self, port: int, password: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._buffer = b""
        if password is not None:
            self.sock.sendall(f"AUTH {password}\r\n".encode())
            assert self._line() == "+OK"
        self.sock.sendall(b"MONITOR\r\n")
        assert self._line() == "+OK"

    def _line(self) -> str:
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("MONITOR connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def until(self, needle: str) -> list[str]:
        """Lines up to and including the first that contains *needle*."""
        seen = []
        while True:
            line = self._line()
            seen.append(line)
            if needle in line:
                return seen

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
