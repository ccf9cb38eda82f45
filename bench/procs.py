"""Processes the benchmark starts and what it reads about them from /proc: worker pids, CPU time, peak RSS,
and open client sockets (a network call at start-up shows up as one).

Every process is started in its own session (process group) and ``Procs.stop_all`` ends each group it
started, by id: TERM first, KILL after a grace period.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import http.client
import os
import signal
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc() if sys.platform.startswith("linux") else None


def _child_setup(cpu: int | None):
    """Runs in the child before exec: pin it, and have the kernel TERM it if the driver dies first (so a
    killed benchmark leaves no server behind even though each runs in its own session)."""

    def setup() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, cmd: list[str], *, env: dict | None = None, cpu: int | None = None, cwd: str | None = None,
              stdout=subprocess.DEVNULL, stderr=None) -> subprocess.Popen:
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                             start_new_session=True, preexec_fn=_child_setup(cpu))
        self.started.append(p)
        return p

    def start_mock(self, *, cpu: int | None = None) -> tuple[subprocess.Popen, int]:
        """The mock upstream (mock_upstream.py) on a free port, answering: (process, port)."""
        mock = self.start([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "mock_upstream.py"),
                           "--port", "0"], cpu=cpu, stdout=subprocess.PIPE)
        port = read_port_line(mock)
        wait_http(port)
        return mock, port

    def stop(self, p: subprocess.Popen, grace: float = 5.0) -> None:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # the group may outlive its leader (a gunicorn worker): make sure nothing of it stays
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()

    def stop_all(self) -> None:
        while self.started:
            self.stop(self.started.pop())


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all their threads, living or gone), in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def client_sockets(pids: list[int], *, listen_port: int) -> list[str]:
    """TCP/UDP sockets of the processes that are not the server's own (listening or accepted) ones:
    what an outgoing call at start-up would leave behind (connected, connecting, DNS)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes[link[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 10 or cols[9] not in inodes:
                continue
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            state = cols[3]
            if table.startswith("tcp") and (state == "0A" or local_port == listen_port):
                continue  # LISTEN, or a connection a client made to us
            found.append(f"{table} {cols[1]} -> {cols[2]} state {state}")
    return found


def wait_http(port: int, *, path: str = "/health", method: str = "GET", body: bytes | None = None,
              headers: dict | None = None, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Until ``method path`` answers 200 (Connection: close, so no connection lingers)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while starting")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request(method, path, body, {**(headers or {}), "Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                return
            last = f"status {resp.status}"
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        finally:
            conn.close()
        time.sleep(0.05)
    raise RuntimeError(f"port {port} not ready after {timeout:g}s ({last})")


def read_port_line(p: subprocess.Popen, timeout: float = 10.0) -> int:
    """The ``PORT <n>`` line the mock prints once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            if p.poll() is not None:
                raise RuntimeError(f"mock exited with {p.returncode}")
            continue
        text = line.decode() if isinstance(line, bytes) else line
        if text.startswith("PORT "):
            return int(text.split()[1])
    raise RuntimeError("mock did not report its port")


def python() -> str:
    return sys.executable
