"""A private network namespace for the test servers: its own loopback, no other interface, no route out.

Ray 2.60 binds its GCS and raylet gRPC servers to every interface (``*:port``) whatever
``--node-ip-address`` says, and replaces ``127.0.0.1`` by the machine's routable address. In
a namespace of its own, the only interface is its loopback: every server in it is reachable
from that namespace alone, and nothing in it can reach another machine (there is no route).

:class:`NetNamespace` makes one (``unshare(CLONE_NEWNET)`` on the calling thread, then back
again), keeps it open by a file descriptor, and :meth:`NetNamespace.entered` moves the calling
thread into it for a ``with`` block: processes started from that thread, and sockets it opens,
are in the namespace (the network namespace belongs to each thread; a child process inherits
the one of the thread that started it). It needs root (``CAP_SYS_ADMIN``); :func:`available`
says whether it can be used. Outside Python: ``nsenter --net=/proc/PID/fd/FD`` with the
numbers of :attr:`NetNamespace.path`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
from contextlib import contextmanager
from typing import Iterator

from . import ServerUnavailable

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise ServerUnavailable(f"{what} failed: {os.strerror(err)} (a private network namespace needs root)")


def _loopback_up() -> None:
    """Bring ``lo`` up in the calling thread's namespace (a new namespace has it down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        name = b"lo".ljust(16, b"\0")
        flags = struct.unpack("16sH", fcntl.ioctl(s, _SIOCGIFFLAGS, struct.pack("16sH22x", name, 0))[:18])[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH22x", name, flags | _IFF_UP))


def available() -> str | None:
    """None when a namespace can be made here, else why not."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a private network namespace needs root (Ray listens on every interface outside one)"
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "no /proc/thread-self/ns/net (not Linux?)"
    return None


class NetNamespace:
    """A new network namespace with its loopback up, held open until :meth:`close`.

    Raises
    ------
    ServerUnavailable
        When the process may not create one (not root).
    """

    def __init__(self) -> None:
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)  # where it was made from
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            self._fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            _loopback_up()
        finally:
            _check(_libc.setns(self._home, CLONE_NEWNET), "setns back")

    @property
    def path(self) -> str:
        """A path naming the namespace while this process lives (for ``nsenter --net=PATH``)."""
        return f"/proc/{os.getpid()}/fd/{self._fd}"

    @property
    def home_path(self) -> str:
        """A path naming the network the namespace was made from (the machine's, usually)."""
        return f"/proc/{os.getpid()}/fd/{self._home}"

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Run the ``with`` block's calling thread in the namespace, then put it back where it was."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(self._fd, CLONE_NEWNET), "setns into the test namespace")
            try:
                yield
            finally:
                _check(_libc.setns(home, CLONE_NEWNET), "setns back")
        finally:
            os.close(home)

    def close(self) -> None:
        """Let the namespace go (it lasts while a process started in it runs)."""
        os.close(self._fd)
        os.close(self._home)


def interfaces() -> list[str]:
    """Names of the network interfaces of the calling thread's namespace."""
    return [name for _, name in socket.if_nameindex()]
