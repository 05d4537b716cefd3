"""What the worker pool and its worker processes say to each other, and how replies travel.

A job goes to a worker over its `multiprocessing` pipe (pickled, small). A worker's
start-up message comes back the same way. A reply is framed by hand on the pipe's file
descriptor: a header (`REPLY_HEADER`: lengths of the pickled metadata and of the body),
the metadata (a `Refusal`, or an `Answer`'s other fields), then the body bytes as they
are: the result body is never pickled, and is copied once on each side (the write
buffer, the read).

The messages on the query path pickle as their class and a tuple of their fields
(`__reduce__`): a slotted dataclass's default pickling costs about three times as much,
which is measurable on a lookup that takes half a millisecond.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
from dataclasses import dataclass

REPLY_HEADER = struct.Struct("!QQ")
# The first read of a reply: most replies fit, and a buffer this small comes from the heap
# (a 1 MiB one was mapped, grown and unmapped for every reply). Then reads of what is
# still missing, up to READ_MAX at a time.
READ_FIRST = 1 << 16
READ_MAX = 1 << 20


@dataclass(frozen=True, slots=True)
class Job:
    """One query for a worker, with the protocol dataset and the client's Accept header."""

    query: str
    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]
    union: bool  # the default graph is the union of the named graphs (unless the query says)
    accept: str
    base_iri: str  # relative IRIs resolve against the dataset's base IRI, as in our data files
    # the client's IRI space (`query.iri_space`): our IRIs are read and written under this
    # base instead of the base IRI; None: as the data holds them (the site's own queries)
    public_base: str | None = None

    def __reduce__(self) -> tuple[type[Job], tuple[object, ...]]:
        fields = (
            self.query, self.default_graphs, self.named_graphs, self.union, self.accept, self.base_iri,
            self.public_base,
        )
        return Job, fields


@dataclass(frozen=True, slots=True)
class Ready:
    """A worker opened the store and waits for jobs; how it is isolated (`sandbox.LEVELS`)."""

    pid: int
    level: str
    detail: str


@dataclass(frozen=True, slots=True)
class StartFailed:
    """A worker could not isolate itself or open the store; it exits after saying why."""

    message: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A result: its query form, media type, whether a SERVICE took part, and the body."""

    form: str
    media_type: str
    federated: bool
    body: bytes = b""

    def __reduce__(self) -> tuple[type[Answer], tuple[str, str, bool, bytes]]:
        return Answer, (self.form, self.media_type, self.federated, self.body)


@dataclass(frozen=True, slots=True)
class Refusal:
    """No result: the HTTP status and the message for the client."""

    status: int
    message: str

    def __reduce__(self) -> tuple[type[Refusal], tuple[int, str]]:
        return Refusal, (self.status, self.message)


Reply = Answer | Refusal


def send_reply(fd: int, reply: Reply) -> None:
    """Write one framed reply to `fd` (blocking: a worker has nothing else to do)."""
    if isinstance(reply, Answer):  # the head as a plain tuple: the cheapest thing to pickle
        body, head = reply.body, (reply.form, reply.media_type, reply.federated)
    else:
        body, head = b"", reply
    meta = pickle.dumps(head, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(REPLY_HEADER.pack(len(meta), len(body)) + meta + body)
    while view:
        view = view[os.write(fd, view) :]


class ReplyReader:
    """Collects one framed reply from a worker's pipe, called by the event loop when the
    pipe is readable. Each call reads once: a read on a readable descriptor returns what
    is there without waiting, so a large reply never blocks the loop while it arrives."""

    def __init__(self, fd: int, future: asyncio.Future[Reply]) -> None:
        self.fd = fd
        self.future = future
        self.buffer = bytearray()
        self.meta_len = -1
        self.body_len = 0

    def __call__(self) -> None:
        if self.future.done():
            return
        if self.meta_len < 0:
            want = READ_FIRST
        else:
            want = max(1, min(READ_MAX, REPLY_HEADER.size + self.meta_len + self.body_len - len(self.buffer)))
        try:
            data = os.read(self.fd, want)
        except BlockingIOError:
            return
        except OSError as exc:
            self.future.set_exception(exc)
            return
        if not data:
            self.future.set_exception(EOFError("the worker closed its pipe"))
            return
        self.buffer += data
        size = REPLY_HEADER.size
        if self.meta_len < 0:
            if len(self.buffer) < size:
                return
            self.meta_len, self.body_len = REPLY_HEADER.unpack_from(self.buffer)
        end = size + self.meta_len + self.body_len
        if len(self.buffer) < end:
            return
        view = memoryview(self.buffer)
        reply = pickle.loads(view[size : size + self.meta_len])
        if isinstance(reply, tuple):  # an Answer's head (see send_reply)
            reply = Answer(*reply, bytes(view[size + self.meta_len : end]))  # one copy of the body
        view.release()
        self.future.set_result(reply)
