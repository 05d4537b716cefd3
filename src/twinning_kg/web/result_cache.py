"""A bounded cache of /sparql answers, and their validators (ETag).

A release never changes, so the answer to (release version, query, protocol dataset,
result media type) never goes stale: it can be kept until memory is wanted for others.
The key holds the *negotiated* media type, not the raw Accept header, so `Accept:
application/json` and `?format=json` share one entry; the front learns each query's form
(SELECT, ASK, CONSTRUCT, DESCRIBE) from its first answer and negotiates locally with the
one policy (`query.result_formats`).

What is never kept: errors of any kind (a refusal, a time limit, the row cap: they are
not answers), federated answers (they depend on another service, not on our release,
and carry `Cache-Control: no-store`), and an answer the engine wrote in another format
than the one negotiated here (the XML fallback for characters XML cannot carry): it
depends on the whole Accept header, not on the media type.

An entry also keeps its gzip form once a client has asked for it (`keep_gzip`): most
clients accept gzip, and compressing the same answer again on every hit cost a
few percent of a small hit and as much as the whole hit for an answer of 50 kB.

The cache is bounded by the bytes it holds (bodies, their gzip forms, keys and a fixed
overhead per entry), least recently used out first; an answer larger than an eighth of the bound is
not kept. It belongs to one release: when the served release changes
(`web.release_keeper`), it is emptied, and an answer computed on the old release that
arrives after the switch is not stored.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

from twinning_kg.query.negotiation import NotAcceptable
from twinning_kg.query.result_formats import negotiate

ENTRY_OVERHEAD = 256  # bytes per entry for the key tuple, the entry and the dict slot
DEFAULT_CACHE_MB = 32


def cache_key(
    query: str, default_graphs: tuple[str, ...], named_graphs: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The query part of a key: the text without surrounding whitespace (which no query
    that parses can depend on) and the protocol dataset."""
    return (query.strip(), default_graphs, named_graphs)


@lru_cache(maxsize=1024)
def negotiated(form: str, accept: str) -> str | None:
    """The content type a `form` result is written in for this Accept (None: 406)."""
    try:
        return negotiate(form, accept).content_type
    except NotAcceptable:
        return None


def etag_for(version: str, query_key: tuple[object, ...], media_type: str) -> str:
    """A strong validator from the release version, the query (and dataset) and the format."""
    digest = hashlib.blake2b(repr((query_key, media_type)).encode("utf-8"), digest_size=8).hexdigest()
    return f'"{version[:32]}-{digest}"'


@dataclass(slots=True)
class Entry:
    media_type: str
    body: bytes
    etag: str
    size: int  # bytes it counts for while kept
    kept: bool = False  # in the cache (not evicted, not too large to keep)
    gzip_form: bytes | None = None


@dataclass
class ResultCache:
    """LRU over (query key, media type), bounded by bytes; one release at a time."""

    max_bytes: int = DEFAULT_CACHE_MB * 1024 * 1024
    version: str = ""
    size: int = 0
    hits: int = 0
    misses: int = 0
    _entries: OrderedDict[tuple[object, ...], Entry] = field(default_factory=OrderedDict)
    _forms: dict[tuple[object, ...], str] = field(default_factory=dict)  # query key -> its form

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def for_release(self, version: str) -> None:
        """Serve `version` from now on: everything kept for another release goes."""
        if version != self.version:
            for entry in self._entries.values():
                entry.kept = False  # an answer in flight no longer counts here
            self._entries.clear()
            self._forms.clear()
            self.size = 0
            self.version = version

    def media_type(self, query_key: tuple[object, ...], accept: str) -> str | None:
        """The media type this request's answer has, when the query's form is known."""
        form = self._forms.get(query_key)
        return negotiated(form, accept) if form is not None else None

    def get(self, query_key: tuple[object, ...], accept: str) -> Entry | None:
        media = self.media_type(query_key, accept) if self.enabled else None
        entry = self._entries.get((query_key, media)) if media is not None else None
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end((query_key, media))
        self.hits += 1
        return entry

    def put(
        self,
        version: str,
        query_key: tuple[object, ...],
        accept: str,
        form: str,
        media_type: str,
        body: bytes,
    ) -> Entry:
        """Remember an answer (when it may be kept: module docstring); returns its entry."""
        entry = Entry(media_type, body, etag_for(version, query_key, media_type), 0)
        if not self.enabled or version != self.version or negotiated(form, accept) != media_type:
            return entry
        key_bytes = sum(len(s) for s in _strings(query_key)) + len(media_type)
        entry.size = len(body) + key_bytes + ENTRY_OVERHEAD
        if entry.size > self.max_bytes // 8:
            return entry
        self._forms[query_key] = form
        old = self._entries.pop((query_key, media_type), None)
        if old is not None:
            old.kept = False
            self.size -= old.size
        self._entries[(query_key, media_type)] = entry
        entry.kept = True
        self.size += entry.size
        self._evict()
        if len(self._forms) > 8 * len(self._entries) + 1024:  # forms of queries evicted long ago
            live = {k[0] for k in self._entries}
            self._forms = {k: v for k, v in self._forms.items() if k in live}
        return entry

    def keep_gzip(self, entry: Entry, form: bytes) -> None:
        """Keep `form`, `entry`'s body gzipped (`web.compression.gzip_body`, by the caller:
        large bodies are compressed in a thread), counted against the bound while kept."""
        if entry.gzip_form is not None:
            return
        entry.gzip_form = form
        if entry.kept:
            entry.size += len(form)
            self.size += len(form)
            self._evict()

    def _evict(self) -> None:
        while self.size > self.max_bytes:
            _key, evicted = self._entries.popitem(last=False)
            evicted.kept = False
            self.size -= evicted.size

    def __len__(self) -> int:
        return len(self._entries)


def _strings(query_key: tuple[object, ...]) -> list[str]:
    out: list[str] = []
    for part in query_key:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, tuple):
            out.extend(p for p in part if isinstance(p, str))
    return out
