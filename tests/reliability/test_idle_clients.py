"""Idle keep-alive clients (issue 25): 1,000 connections that each made one request and then sit idle
on keep-alive, held against the one worker. Meanwhile a normal request is served, the worker's RSS
and open fds stay bounded, and once the clients close every fd is released.

Quick by default (held 12 s); RELIABILITY_LONG=1 (`make reliability`) holds them 600 s, RELIABILITY_IDLE_S
sets any hold.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from .conftest import FAULT_KEY, LONG, FaultGateway
from .faults_client import send

CLIENTS = int(os.environ.get("RELIABILITY_IDLE_CLIENTS", "1000"))
HOLD_S = float(os.environ.get("RELIABILITY_IDLE_S", "600" if LONG else "12"))
RSS_BOUND_MB = 64.0
"""Growth allowed over the worker's RSS before the clients: ~64 KB per idle connection at most."""
FD_SLACK = 32
"""fds besides one socket per client (upstream pools, the store, log files come and go)."""


def _worker(master: int) -> int:
    """The one worker process of the server whose master is `master`."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _open_idle(port: int) -> socket.socket:
    """A client that asked once (keep-alive) and now waits without sending anything."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        assert data, "closed before answering"
        head += data
    assert head.startswith(b"HTTP/1.1 200"), head[:64]
    return sock


def test_idle_keep_alive_clients_are_held_and_released(fault_gateway: FaultGateway) -> None:
    gw = fault_gateway.gateway
    port = gw.port
    worker = _worker(gw.proc.pid)
    assert send(port, "chat", "ok", False, FAULT_KEY).status == 200  # warm: pools, tables, caches
    rss0, fds0 = _rss_mb(worker), _fds(worker)
    socks: list[socket.socket] = []
    try:
        socks.extend(_open_idle(port) for _ in range(CLIENTS))  # kept as they open: closed on failure
        peak_rss, peak_fds = _rss_mb(worker), _fds(worker)
        assert peak_fds >= fds0 + CLIENTS - FD_SLACK  # they really are held open by the worker
        deadline = time.monotonic() + HOLD_S
        served = 0
        while time.monotonic() < deadline:
            assert send(port, "chat", "ok", False, FAULT_KEY).status == 200
            served += 1
            peak_rss, peak_fds = max(peak_rss, _rss_mb(worker)), max(peak_fds, _fds(worker))
            time.sleep(1.0)
        assert served >= 1
        # Still open after the hold (granian sets no idle keep-alive timeout): a second request works.
        sock = socks[len(socks) // 2]
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert _worker(gw.proc.pid) == worker and gw.alive()
        assert peak_fds <= fds0 + CLIENTS + FD_SLACK
        assert peak_rss - rss0 <= RSS_BOUND_MB, (rss0, peak_rss)
    finally:
        for sock in socks:
            sock.close()
    # Released: the worker's fds come back to where they were (bounded wait, no timing asserted).
    deadline = time.monotonic() + 10
    while _fds(worker) > fds0 + FD_SLACK and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _fds(worker) <= fds0 + FD_SLACK
    assert send(port, "chat", "ok", False, FAULT_KEY).status == 200
    print(
        f"\nidle clients={CLIENTS} hold={HOLD_S}s: worker rss {rss0:.1f} -> peak {peak_rss:.1f} MB "
        f"(after close {_rss_mb(worker):.1f}), fds {fds0} -> peak {peak_fds} -> {_fds(worker)}"
    )
