"""A private network namespace where nothing but loopback exists.

The egress tests run their servers, and Vectra Guard itself, in a named
namespace (`ip netns add vgtest-<random>`) that has one interface, `lo`,
and no routes off it: even a broken check cannot send a packet off the
machine. Extra addresses on `lo` (cloud metadata, private ranges, IPv6)
let a test server listen on the very addresses a sandbox must not reach,
so that a test can prove no connection arrived.

Commands enter it with `nsenter --net=/run/netns/NAME`, not `ip netns
exec`: the latter also unshares the mount namespace and mounts a fresh
sysfs on /sys, which hides /sys/fs/cgroup's mounts (Vectra Guard then
reads a hybrid host as cgroups v1). nsenter changes the network
namespace only.

Sockets are opened inside from the test process by a short-lived thread
that enters the namespace with setns(2) (which moves only the calling
thread) and ends there; a socket stays in the namespace it was made in.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
# Addresses a sandbox must never reach, for servers that prove it did not:
# cloud metadata (AWS/GCP/Azure, ECS task roles, EKS pod identity, Alibaba),
# a private range, and AWS's IPv6 metadata and pod-identity endpoints.
TRAP_ADDRESSES = ("169.254.169.254/32", "169.254.170.2/32", "169.254.170.23/32", "100.100.100.200/32",
                  "10.1.2.3/32", "fd00:ec2::254/128", "fd00:ec2::23/128")
T = TypeVar("T")


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Netns:
    """A named namespace made by private_netns(); `name` is `vgtest-<hex>`."""

    name: str

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def prefix(self) -> list[str]:
        """The argv prefix that runs a command inside (network namespace only)."""
        return ["nsenter", f"--net={self.path}", "--"]

    def run(self, argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`argv` inside, its output as text; never raises for its exit status."""
        return subprocess.run([*self.prefix(), *argv], capture_output=True, text=True, check=False,
                              timeout=timeout)

    def add_address(self, cidr: str) -> None:
        """Add `cidr` (e.g. `169.254.169.254/32`, `fd00:ec2::254/128`) to `lo`.
        Raises RuntimeError with ip's message if it cannot."""
        if ipaddress.ip_interface(cidr).version == 6:
            # A namespace's lo may start with IPv6 off, depending on the host's defaults.
            done = self.run(["sysctl", "-q", "-w", "net.ipv6.conf.lo.disable_ipv6=0"])
            if done.returncode != 0:
                raise RuntimeError(f"cannot enable IPv6 in {self.name}: {done.stderr.strip()}")
            _ip("-n", self.name, "addr", "add", cidr, "dev", "lo", "nodad")
        else:
            _ip("-n", self.name, "addr", "add", cidr, "dev", "lo")

    def call(self, function: Callable[[], T]) -> T:
        """function() on a fresh thread that has entered this namespace; its
        result, or the exception it raised. The thread ends there, so no
        thread of the caller's ever changes namespace."""
        outcome: list[T] = []
        failure: list[BaseException] = []

        def inside() -> None:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns into {self.name}: {os.strerror(err)}")
                finally:
                    os.close(fd)
                outcome.append(function())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
                failure.append(exc)

        thread = threading.Thread(target=inside, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
        return outcome[0]

    def listen(self, address: str, port: int = 0, backlog: int = 128) -> socket.socket:
        """A TCP socket listening on address:port inside (port 0: any free one),
        IPv4 or IPv6 by the address's form."""
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET

        def make() -> socket.socket:
            listener = socket.socket(family, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((address, port))
                listener.listen(backlog)
            except OSError:
                listener.close()
                raise
            return listener

        return self.call(make)

    def connect(self, address: str, port: int, timeout: float = 5) -> socket.socket:
        """A TCP connection made from inside (it stays there)."""
        return self.call(lambda: socket.create_connection((address, port), timeout=timeout))

    def links(self) -> list[str]:
        """The names of its interfaces."""
        return [line.split(":")[1].strip().split("@")[0] for line in _ip("-n", self.name, "-o", "link").splitlines()]

    def pids(self) -> list[int]:
        """Processes whose network namespace this is."""
        return [int(pid) for pid in _ip("netns", "pids", self.name).split()]


def _stop_leftovers(netns: Netns) -> None:
    """KILL what a failed test left running inside: only the test's own
    processes can be in a namespace named at random a moment ago."""
    for pid in netns.pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def private_netns(addresses: Iterable[str] = ()) -> Iterator[Netns]:
    """A new namespace with only `lo`, up, carrying `addresses` (CIDRs) too;
    deleted at the end, even on failure. Needs root."""
    netns = Netns(f"vgtest-{secrets.token_hex(4)}")
    _ip("netns", "add", netns.name)
    try:
        _ip("-n", netns.name, "link", "set", "lo", "up")
        if netns.links() != ["lo"]:  # a namespace starts empty; anything else is not our ground
            raise RuntimeError(f"{netns.name} has interfaces besides lo: {netns.links()}")
        for cidr in addresses:
            netns.add_address(cidr)
        yield netns
    finally:
        _stop_leftovers(netns)
        _ip("netns", "del", netns.name)
