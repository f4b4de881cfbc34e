"""A threaded loopback TCP server for upstreams that write raw HTTP bytes (broken_upstream.py,
fault_upstream.py): the listener, one thread per connection, and a stop that closes every connection
still open. A subclass answers one connection in `_serve` and removes it from `_open` when done."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each to `_serve` on a thread of its own."""

    def __init__(self, name: str) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._cond = threading.Condition()
        self._open: set[socket.socket] = set()
        self._workers: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name=name, daemon=True)

    def base_url(self, behaviour: str) -> str:
        """The base URL whose first path segment picks the behaviour."""
        return f"http://127.0.0.1:{self.port}/{behaviour}/v1"

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._acceptor.join(5)
        with self._cond:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for worker in self._workers:
            worker.join(5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self._open.add(conn)
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError
