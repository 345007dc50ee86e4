"""TCP forwarding from the host's loopback into a network namespace, in-process.

The node's control plane listens inside the node's network namespace (pods and the API server's webhook
calls need kube-proxy's rules, which live there). Host tools reach it through 127.0.0.1:PORT on the host,
forwarded to 127.0.0.1:PORT in the namespace: the same address works on both sides, so one kubeconfig
serves kubectl on the host and kubelet in the namespace. No address is added to the host.

A socket belongs to the network namespace its creating thread was in, so one thread enters the namespace
(``setns``) and only creates sockets; connecting and copying happen in ordinary threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import queue
import socket
import threading
from pathlib import Path

_CLONE_NEWNET = 0x40000000
_CHUNK = 65536
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class ForwardError(RuntimeError):
    """The forwarder could not enter the namespace or bind a port."""


class _SocketMaker(threading.Thread):
    """A thread that lives in the target network namespace and hands out fresh TCP sockets."""

    def __init__(self, netns: Path) -> None:
        super().__init__(name="netns-socket-maker", daemon=True)
        self._netns = netns
        self._requests: queue.Queue[queue.Queue[socket.socket | BaseException] | None] = queue.Queue()
        self._entered: queue.Queue[BaseException | None] = queue.Queue()

    def run(self) -> None:
        try:
            fd = os.open(self._netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise ForwardError(f"setns({self._netns}): {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
        except BaseException as error:
            self._entered.put(error)
            return
        self._entered.put(None)
        while (reply := self._requests.get()) is not None:
            try:
                reply.put(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            except OSError as error:
                reply.put(error)

    def wait_entered(self) -> None:
        error = self._entered.get(timeout=10)
        if error is not None:
            raise ForwardError(str(error)) from error

    def make(self) -> socket.socket:
        reply: queue.Queue[socket.socket | BaseException] = queue.Queue(maxsize=1)
        self._requests.put(reply)
        made = reply.get(timeout=10)
        if isinstance(made, BaseException):
            raise made
        return made

    def close(self) -> None:
        self._requests.put(None)


class Forwarder:
    """Forward 127.0.0.1:PORT on the host to 127.0.0.1:PORT inside ``netns`` for each added port."""

    def __init__(self, netns: Path) -> None:
        self._maker = _SocketMaker(netns)
        self._maker.start()
        self._maker.wait_entered()
        self._listeners: list[socket.socket] = []
        self._closed = threading.Event()

    def add(self, port: int, target_host: str = "127.0.0.1") -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", port))
        except OSError as error:
            listener.close()
            raise ForwardError(f"cannot forward 127.0.0.1:{port}: {error}") from error
        listener.listen(128)
        self._listeners.append(listener)
        threading.Thread(target=self._accept, args=(listener, (target_host, port)),
                         name=f"forward-{port}", daemon=True).start()

    def _accept(self, listener: socket.socket, target: tuple[str, int]) -> None:
        while not self._closed.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._connect, args=(client, target), daemon=True).start()

    def _connect(self, client: socket.socket, target: tuple[str, int]) -> None:
        try:
            upstream = self._maker.make()
            upstream.settimeout(5)
            upstream.connect(target)
            upstream.settimeout(None)
        except (OSError, queue.Empty):
            client.close()
            return
        pair = _Pair(client, upstream)
        threading.Thread(target=pair.pump, args=(upstream, client), daemon=True).start()
        pair.pump(client, upstream)

    def close(self) -> None:
        self._closed.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._maker.close()


class _Pair:
    """The two sockets of one forwarded connection; the second direction to finish closes both."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self._sockets = (a, b)
        self._running = 2
        self._lock = threading.Lock()

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # pass the half-close on
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            for sock in self._sockets:
                sock.close()
