"""Network isolation of a query worker, applied by the worker itself before it opens the store.

pyoxigraph executes `SERVICE <url>` with its own HTTP client, so whatever URL reaches
its parser is called. The guard (`query_guard`) refuses SERVICE outside the allow-list,
but a guard is a second parser of the query: to make a misreading harmless, a worker
cannot reach any network at all. Levels, best first (`isolate` returns the one reached):

- "namespace": the worker moves into a network namespace of its own
  (`unshare(CLONE_NEWNET)`; without CAP_SYS_ADMIN inside a new user namespace, as
  `unshare -Urn` does). The namespace has only a loopback interface, so every
  connection to anything else fails. When federation is on, loopback is brought up
  and a small relay (a thread of the worker) listens on `RELAY_HOST:RELAY_PORT` there;
  it pipes each connection to the egress proxy's Unix socket (a file-system path, so
  reachable across network namespaces), and the proxy (`egress.EgressProxy`, in the
  server process) calls only the allow-listed URLs. The guard rewrites each accepted
  SERVICE target to `relay_url(index)`.
- "seccomp": namespaces unavailable. A seccomp filter (libseccomp) makes `socket()`
  fail for every family but AF_UNIX and disables io_uring, so the worker cannot open
  a network connection; federation is refused.
- "none": neither works on this host. The engine refuses federation and logs an error;
  the guard is then the only wall.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import signal
import socket
import struct
import threading

RELAY_HOST = "127.0.0.1"
RELAY_PORT = 8890  # inside the worker's own namespace: nothing else listens there
LEVELS = ("none", "seccomp", "namespace")  # weakest first

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def relay_url(index: int) -> str:
    """Where a worker calls allow-listed service number `index` (see module docstring)."""
    return f"http://{RELAY_HOST}:{RELAY_PORT}/{index}"


def set_parent_death_signal() -> None:
    """Linux: die with the parent even if it is SIGKILLed (no orphaned workers or relays)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def isolate(mode: str, relay_to: str | None) -> tuple[str, str]:
    """Cut this process off the network as far as the host allows; returns (level, detail).

    `mode`: "auto" (best available) or "seccomp" (no namespaces). `relay_to`: the egress
    proxy's Unix socket when federation is wanted (only possible in a namespace). Call
    while the process has one thread: a user namespace cannot be entered otherwise.
    """
    details: list[str] = []
    if mode != "seccomp":
        failure = _new_network_namespace()
        if failure is None:
            if relay_to:
                _loopback_up()
                _start_relay(relay_to)
                return "namespace", f"own network namespace, relay to {relay_to}"
            return "namespace", "own network namespace, no interface up"
        details.append(f"no network namespace ({failure})")
    failure = _seccomp_no_network()
    if failure is None:
        return "seccomp", "; ".join([*details, "seccomp: no sockets but AF_UNIX"])
    details.append(f"no seccomp filter ({failure})")
    return "none", "; ".join(details)


# ------------------------------------------------------------------ network namespace


def _new_network_namespace() -> str | None:
    """Enter a new network namespace; None on success, else why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        return None
    first = os.strerror(ctypes.get_errno())
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return f"unshare: {first}; with a user namespace: {os.strerror(ctypes.get_errno())}"
    try:
        # Keep our own ids inside the user namespace (files stay ours, nothing else is mapped).
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError:
        pass  # unmapped ids still access files as before; the network namespace holds
    return None


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | _IFF_UP))


def _start_relay(target: str) -> None:
    """Start the relay: TCP on RELAY_HOST:RELAY_PORT (this namespace) -> Unix socket `target`.

    A daemon thread of the worker, not a process of its own: pyoxigraph releases the GIL
    while it evaluates (SERVICE calls included), so the relay runs while a query waits on
    it, and it dies with the worker, leaving no orphan to reap.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((RELAY_HOST, RELAY_PORT))
    listener.listen(32)

    def accept_forever() -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            threading.Thread(target=_relay_one, args=(client, target), daemon=True).start()

    threading.Thread(target=accept_forever, name="egress-relay", daemon=True).start()


def _relay_one(client: socket.socket, target: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(target)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
    back.start()
    _copy(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


# ------------------------------------------------------------------ seccomp

_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_NE = 1


def _scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _seccomp_no_network() -> str | None:
    """Install a filter: socket() only for AF_UNIX, no io_uring. None on success, else why not."""
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        return f"libseccomp not found: {exc}"
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        return "seccomp_init failed"
    try:
        not_unix = (_ArgCmp * 1)(_ArgCmp(0, _SCMP_CMP_NE, socket.AF_UNIX, 0))
        rules = [(b"socket", _scmp_act_errno(errno.EAFNOSUPPORT), 1, not_unix)]
        for syscall in (b"io_uring_setup", b"io_uring_enter", b"io_uring_register"):
            rules.append((syscall, _scmp_act_errno(errno.ENOSYS), 0, None))
        for syscall, action, count, args in rules:
            number = lib.seccomp_syscall_resolve_name(syscall)
            if number < 0:
                continue  # not on this architecture
            rc = lib.seccomp_rule_add_array(ctx, action, number, count, args)
            if rc < 0:
                return f"seccomp_rule_add({syscall.decode()}): {os.strerror(-rc)}"
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            return f"seccomp_load: {os.strerror(-rc)}"
        return None
    finally:
        lib.seccomp_release(ctx)
