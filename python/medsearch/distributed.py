"""medsearch.distributed: one collection split over shards on Ray, built in
parallel and searched scatter-gather, with the answers of one medsearch.Index.

    >>> from medsearch.distributed import ShardedIndex
    >>> index = ShardedIndex.build({"nci-pdq": "../shared/data/nci-pdq"}, shards=4, path="pdq-sharded")
    >>> for hit in index.search("recurrent mesothelioma treatment", k=3):
    ...     print(hit.score, " > ".join(hit.heading_path), hit.url)
    >>> index.close()

Documents go to shards by a stable hash of their doc_id (medsearch.shard_of).
Each shard is an ordinary index directory under `path`, built by a Ray task
and served by a Ray actor that loads it from there (no index crosses the
object store). The shards' statistics are reduced into one collection
statistics file; every shard scores with it and the coordinator (this
object) merges the shards' candidates in C++ before fusion, reranking,
grouping and diversity, so the hits equal one Index's over the same
documents (include/medsearch/shard.h says how). The query is analysed and
embedded once, here.

Layout of `path`:
    sharded.json          format, shard count, statistics version, next document position
    collection.stats      the collection's statistics (versioned, checksummed)
    shard-000/            shard 0's index (medsearch.Index.save)
    shard-000.order.json  the collection position of each of its documents

Faults: shard actors restart on failure and reload their shard; Ray re-runs
the calls in flight on the restarted actor (every shard call is
idempotent), so a query waits instead of failing. A query that cannot be
answered by every shard within `timeout` raises ShardUnavailableError:
never a partial top-k.

Changes (add, remove) are written through: each changed shard saves its
directory, then the statistics and the manifest are written, then every
shard switches to them. Queries wait while a change runs, so none mixes
statistics versions. Each load() starts its own shard actors: a
ShardedIndex loaded before another one changed the directory keeps
answering from what it loaded; make changes through one of them at a time.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterable, Sequence

from . import _core
from ._core import CollectionStats, Coordinator, CorruptIndexError, Pipeline, ShardSearcher

FORMAT = "medsearch-sharded"
VERSION = 1
MANIFEST = "sharded.json"
STATS = "collection.stats"

# A local cluster started by connect() (bench/results/distributed/ray-notes.md): on 127.0.0.1
# only (else Ray binds the machine's public address), no usage statistics, no token files.
_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


class ShardUnavailableError(RuntimeError):
    """A shard did not answer in time (dead and not coming back, or overloaded): the query is not answered."""


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - the extra is installed in the test set-up
        raise ImportError("medsearch.distributed needs Ray: pip install 'medsearch[distributed]'") from e
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to the Ray cluster at `address` ("host:port"), or start a local one sized to the machine
    (num_cpus: default all). Does nothing when Ray is already initialised in this process."""
    if not address:
        # A local cluster: on loopback only, without usage reports or token files (ray-notes.md).
        # Ray reads some of these when it is imported; a caller's own settings win.
        for key, value in _RAY_ENV.items():
            os.environ.setdefault(key, value)
    ray = _ray()
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    # Ray's Unix sockets live under the temp dir, whose path must stay short.
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    atexit.register(shutil.rmtree, temp, ignore_errors=True)
    ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 2**20, _temp_dir=temp)


def _shard_dir(path: str, shard: int) -> str:
    return os.path.join(path, f"shard-{shard:03d}")


def _order_file(path: str, shard: int) -> str:
    return os.path.join(path, f"shard-{shard:03d}.order.json")


def _write_json(file: str, value: Any) -> None:
    """Atomically: a temp file beside it, fsynced, renamed over it."""
    tmp = file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, file)


def _read_json(file: str, what: str) -> Any:
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{file}: missing ({what})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptIndexError(f"{file}: damaged {what}: {e}") from None


def _read_order(path: str, shard: int, documents: int) -> list[int]:
    file = _order_file(path, shard)
    order = _read_json(file, f"document positions of shard {shard}")
    if (not isinstance(order, list) or len(order) != documents or not all(isinstance(x, int) for x in order)
            or any(b <= a for a, b in zip(order, order[1:]))):
        raise CorruptIndexError(f"{file}: damaged: {documents} ascending document positions expected")
    return order


def _make_encoder(spec: Any):
    """An embedder from a spec that can travel to Ray workers: None, a model name, a model directory,
    a model_id (for 'auto'), or a picklable zero-argument callable that returns one."""
    if spec is None:
        return None
    if callable(spec):
        return spec()
    if isinstance(spec, tuple) and spec[0] == "model_id":
        return _core.Encoder.for_model_id(spec[1])
    if os.path.isdir(str(spec)):
        return _core.Encoder(model_dir=str(spec))
    return _core.Encoder(model=str(spec))


class _Progress:
    """Ray actor: the build tasks' progress, read by the caller."""

    def __init__(self):
        self.state: dict[int, tuple[str, int, int]] = {}

    def report(self, shard: int, stage: str, done: int, total: int) -> None:
        self.state[shard] = (stage, done, total)

    def read(self) -> dict[int, tuple[str, int, int]]:
        return dict(self.state)


def _build_shard(corpora, shard: int, shards: int, path: str, encoder_spec, options: dict, progress) -> bytes:
    """Ray task: builds and saves one shard; returns its statistics (bytes)."""
    last = [0.0]

    def report(stage, done, total):
        now = time.monotonic()
        if progress is not None and (now - last[0] > 0.5 or done == total):
            last[0] = now
            progress.report.remote(shard, stage, done, total)

    index, positions = _core.build_shard(corpora, shard, shards, progress=report,
                                         encoder=_make_encoder(encoder_spec), **options)
    index.save(_shard_dir(path, shard))
    _write_json(_order_file(path, shard), list(positions))
    if progress is not None:
        progress.report.remote(shard, "done", 1, 1)
    return CollectionStats.of(index).to_bytes()


class _Shard:
    """Ray actor: one shard, loaded from its directory with the collection's current statistics.
    Every method may be re-run after a restart (Ray retries them): they are idempotent. Its
    constructor takes nothing large: a restart re-reads its arguments, which must still exist."""

    def __init__(self, shard: int, path: str):
        self.shard, self.path = shard, path
        self.index = _core.Index.load(_shard_dir(path, shard), encoder=None)
        self.order = _read_order(path, shard, self.index.num_documents)
        self.stats = CollectionStats.load(os.path.join(path, STATS))
        self.searcher = ShardSearcher(shard, self.index, self.stats, self.order)

    def ready(self) -> int:
        return os.getpid()

    def answer(self, plan: bytes) -> bytes:
        return self.searcher.answer(plan)

    def answer_batch(self, plans: list[bytes]) -> list[bytes]:
        return [self.searcher.answer(p) for p in plans]

    def passages(self, numbers: list[int], generation: int) -> list[dict]:
        return self.searcher.passages(numbers, generation)

    def local_stats(self) -> bytes:
        return CollectionStats.of(self.index).to_bytes()

    def index_stats(self) -> dict:
        return self.index.stats()

    def use_stats(self, stats: bytes) -> int:
        self.stats = CollectionStats.from_bytes(stats)
        self.searcher = ShardSearcher(self.shard, self.index, self.stats, self.order)
        return self.stats.version

    def _save(self) -> None:
        self.index.save(_shard_dir(self.path, self.shard))
        _write_json(_order_file(self.path, self.shard), self.order)

    def add(self, documents: list[dict], positions: list[int], encoder_spec) -> None:
        # A re-run after a restart finds the documents already there (saved): nothing to do again.
        if self.order and positions and self.order[-1] >= positions[-1]:
            return
        if self.index.has_vectors:
            if encoder_spec is None:
                raise ValueError("this sharded index holds vectors: load it with an encoder to add documents")
            self.index.attach_encoder(_make_encoder(encoder_spec))
        self.index.add(documents)
        self.order = self.order + list(positions)
        self._save()

    def missing(self, doc_ids: list[str]) -> list[str]:
        """The doc_ids this shard does not hold."""
        out = []
        for d in doc_ids:
            try:
                self.index.clean_text(d)
            except KeyError:
                out.append(d)
        return out

    def remove(self, doc_ids: list[str], corpus: str) -> None:
        absent = set(self.missing(doc_ids))
        present = [d for d in doc_ids if d not in absent]
        if not present:  # a re-run after the removal was saved
            return
        keep = [True] * self.index.num_documents
        gone = set(present)
        for p in range(len(self.index)):
            hit = self.index.passage(p)
            if hit.doc_id in gone and (not corpus or hit.corpus == corpus):
                keep[self.index.doc_number(p)] = False
        self.index.remove(present, corpus=corpus)
        self.order = [o for o, k in zip(self.order, keep) if k]
        self._save()


class _RWLock:
    """Searches share; changes exclude them."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextlib.contextmanager
    def read(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._writer)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and self._readers == 0)
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class ShardedIndex:
    """A collection of shards on Ray, searched like a medsearch.Index (same arguments, same Results)."""

    def __init__(self, path: str, actors: list, stats: CollectionStats, encoder_spec, manifest: dict,
                 timeout: float):
        self.path = path
        self._actors = actors
        self._encoder_spec = encoder_spec
        self._encoder = None
        if stats.dim and encoder_spec is not None:
            try:
                self._encoder = _make_encoder(encoder_spec)
            except (FileNotFoundError, CorruptIndexError, ValueError):
                if not (isinstance(encoder_spec, tuple) and encoder_spec[0] == "model_id"):
                    raise
                # 'auto' without the model installed: searches that need it say so (as Index.load).
        self._manifest = manifest
        self._stats = stats
        self._coordinator = Coordinator(stats, self._encoder)
        self._lock = _RWLock()
        self.timeout = timeout

    # -- building and loading -------------------------------------------------

    @classmethod
    def build(cls, corpora, shards: int, path, *, encoder: Any = None, address: str | None = None,
              progress: bool | Callable[[dict], None] = True, skip_malformed: bool = False, max_tokens: int = 220,
              k1: float = 0.9, b: float = 0.4, heading_weight: float = 0.4, exact_below: int = 5000,
              task_cpus: int = 1, timeout: float = 60.0) -> "ShardedIndex":
        """Build `shards` shards of `corpora` (as medsearch.Index.build takes them) into the new directory
        `path`, one Ray task per shard, and load them. encoder: None (BM25 only), a model name or
        directory, or a picklable zero-argument callable returning an Encoder or PrecomputedEmbedder
        (called in each task and here, for queries). progress: True prints one line per shard to
        stderr; a callable gets {shard: (stage, done, total)}. exact_below: a shard with fewer passages
        searches its vectors exactly, else with HNSW (as Index.build). task_cpus: the CPUs each build
        task reserves and uses (its threads), so a cluster of W CPUs builds W / task_cpus shards at once."""
        if not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shards must be a positive integer, got {shards!r}")
        path = os.fspath(path)
        if os.path.exists(path) and os.listdir(path):
            raise FileExistsError(f"{path}: not empty (a sharded index is built into a new directory)")
        corpora = _absolute(corpora)  # the tasks' working directory is not ours
        os.makedirs(path, exist_ok=True)
        connect(address)
        ray = _ray()
        reporter = ray.remote(num_cpus=0)(_Progress).remote() if progress else None
        task = ray.remote(num_cpus=task_cpus, max_retries=0)(_build_shard)
        options = dict(skip_malformed=skip_malformed, max_tokens=max_tokens, k1=k1, b=b, heading_weight=heading_weight,
                       exact_below=exact_below, threads=task_cpus)
        path = os.path.abspath(path)
        refs = [task.remote(corpora, s, shards, path, encoder, options, reporter) for s in range(shards)]
        try:
            pending = list(refs)
            shown = ""
            while pending:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
                if reporter is not None:
                    state = ray.get(reporter.read.remote())
                    if callable(progress):
                        progress(state)
                    else:
                        line = "  ".join(f"shard {s}: {st} {d}/{t}" for s, (st, d, t) in sorted(state.items()))
                        if line != shown:
                            print(f"\r{line}", end="", file=sys.stderr, flush=True)
                            shown = line
            parts = [CollectionStats.from_bytes(b) for b in ray.get(refs)]
            # Every task has returned: each shard is done, whatever of its reports is still in flight.
            if callable(progress):
                progress({s: ("done", 1, 1) for s in range(shards)})
            elif progress:
                print(file=sys.stderr)
        except BaseException:
            for r in refs:
                ray.cancel(r, force=True)
            shutil.rmtree(path, ignore_errors=True)
            raise
        finally:
            if reporter is not None:
                ray.kill(reporter)
        stats = CollectionStats.merge(parts)
        stats.version = 1
        stats.save(os.path.join(path, STATS))
        _write_json(os.path.join(path, MANIFEST), {"format": FORMAT, "version": VERSION, "shards": shards,
                                                    "stats_version": 1, "next_position": _next_position(path, shards)})
        return cls.load(path, encoder=encoder, address=address, timeout=timeout)

    @classmethod
    def load(cls, path, *, encoder: Any = "auto", address: str | None = None, timeout: float = 60.0) -> "ShardedIndex":
        """Start one actor per shard of the sharded index at `path`. encoder: 'auto' (the installed encoder
        of the shards' model, when they hold vectors), None, or as build() takes it. A damaged
        manifest, statistics file, order file or shard directory raises an error naming it."""
        path = os.path.abspath(os.fspath(path))
        manifest_file = os.path.join(path, MANIFEST)
        manifest = _read_json(manifest_file, "sharded index manifest")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise CorruptIndexError(f"{manifest_file}: not a sharded medsearch index manifest")
        if manifest.get("version") != VERSION:
            raise CorruptIndexError(f"{manifest_file}: format version {manifest.get('version')}, this build reads {VERSION}")
        shards = manifest.get("shards")
        if not isinstance(shards, int) or shards < 1:
            raise CorruptIndexError(f"{manifest_file}: damaged (shards)")
        stats_file = os.path.join(path, STATS)
        stats = CollectionStats.load(stats_file)
        if stats.version != manifest.get("stats_version") or stats.shards != shards:
            raise CorruptIndexError(f"{stats_file}: version {stats.version} of {stats.shards} shards, the manifest says "
                                    f"version {manifest.get('stats_version')} of {shards} (an interrupted change?)")
        for s in range(shards):  # missing pieces are named here; damaged ones by the actor that loads them
            for piece in (_shard_dir(path, s), _order_file(path, s)):
                if not os.path.exists(piece):
                    raise FileNotFoundError(f"{piece}: missing (shard {s} of {shards})")
        if encoder == "auto":
            encoder = ("model_id", stats.model_id) if stats.dim else None
        connect(address)
        ray = _ray()
        actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(_Shard)
        actors = [actor.remote(s, path) for s in range(shards)]
        try:
            ray.get([a.ready.remote() for a in actors], timeout=timeout + 600)
            # The statistics must be those of the shards as they are on disk.
            local = CollectionStats.merge([CollectionStats.from_bytes(b) for b in
                                           ray.get([a.local_stats.remote() for a in actors])])
            if (local.documents, local.passages, local.num_terms) != (stats.documents, stats.passages, stats.num_terms):
                raise CorruptIndexError(f"{stats_file}: {stats.documents} documents and {stats.passages} passages, the shards "
                                        f"hold {local.documents} and {local.passages} (an interrupted change?)")
        except BaseException:
            for a in actors:
                ray.kill(a, no_restart=True)
            raise
        return cls(path, actors, stats, encoder, manifest, timeout)

    def close(self) -> None:
        """Stop the shard actors (the directory stays)."""
        ray = _ray()
        for a in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(a, no_restart=True)
        self._actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- searching ------------------------------------------------------------

    def _get(self, refs):
        ray = _ray()
        try:
            return ray.get(refs, timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            raise ShardUnavailableError(f"a shard did not answer within {self.timeout} s") from None
        except ray.exceptions.RayActorError as e:
            raise ShardUnavailableError(f"a shard is gone: {e}") from e

    def _fetch(self, merged_list) -> list[list[dict]]:
        """The passages of each merged response's hits, one call per shard."""
        wanted: dict[int, list[tuple[int, int, int]]] = {}  # shard -> (response, position, number)
        for r, merged in enumerate(merged_list):
            for i, (shard, number) in enumerate(merged.locations):
                wanted.setdefault(shard, []).append((r, i, number))
        out = [[None] * len(m.locations) for m in merged_list]
        shards = sorted(wanted)
        replies = self._get([self._actors[s].passages.remote([n for _, _, n in wanted[s]],
                                                             merged_list[wanted[s][0][0]].generations[s])
                             for s in shards])
        for s, passages in zip(shards, replies):
            for (r, i, _), p in zip(wanted[s], passages):
                out[r][i] = p
        return out

    def _answer(self, run):
        """run() once more when a shard answered from a snapshot it no longer holds (it restarted
        between the query and the fetch of its passages): the retry reads one consistent state."""
        for attempt in range(3):
            try:
                return run()
            except _core.StaleError:
                if attempt == 2:
                    raise

    def search(self, query: str, k: int = 10, filters: dict | None = None, level: str = "passage",
               mode: str = "auto", query_vector=None, *, pipeline: Pipeline = Pipeline()):
        """Top-k hits, as medsearch.Index.search() gives them over the same documents."""
        def run():
            plan = self._coordinator.plan(query, k, filters, level, mode, query_vector, pipeline=pipeline)
            answers = self._get([a.answer.remote(plan) for a in self._actors])
            merged = self._coordinator.merge(plan, answers)
            return self._coordinator.results(merged, self._fetch([merged])[0])

        with self._lock.read():
            return self._answer(run)

    def search_batch(self, queries: Sequence[str], k: int = 10, filters: dict | None = None, level: str = "passage",
                     mode: str = "auto", *, pipeline: Pipeline = Pipeline()):
        """search() for many queries: one call per shard for all of them; results in query order."""
        def run():
            plans = [self._coordinator.plan(q, k, filters, level, mode, pipeline=pipeline) for q in queries]
            per_shard = self._get([a.answer_batch.remote(plans) for a in self._actors])
            merged = [self._coordinator.merge(p, [answers[i] for answers in per_shard]) for i, p in enumerate(plans)]
            passages = self._fetch(merged)
            return [self._coordinator.results(m, p) for m, p in zip(merged, passages)]

        with self._lock.read():
            return self._answer(run)

    # -- changing the documents -----------------------------------------------

    def _publish(self) -> None:
        """New statistics from every shard's as it is now, written, then used by every shard and here."""
        parts = self._get([a.local_stats.remote() for a in self._actors])
        stats = CollectionStats.merge([CollectionStats.from_bytes(b) for b in parts])
        stats.version = self._stats.version + 1
        stats.save(os.path.join(self.path, STATS))
        manifest = dict(self._manifest, stats_version=stats.version)
        _write_json(os.path.join(self.path, MANIFEST), manifest)
        self._get([a.use_stats.remote(stats.to_bytes()) for a in self._actors])
        self._manifest, self._stats = manifest, stats
        self._coordinator = Coordinator(stats, self._encoder)

    def add(self, documents: Iterable[dict]) -> None:
        """Add documents (dicts, as medsearch.Index.add takes them) to their shards. Errors leave the
        collection as it was (shards that had added theirs remove them again)."""
        docs = list(documents)
        if not docs:
            raise ValueError("no documents to add")
        n = len(self._actors)
        with self._lock.write():
            position = self._manifest["next_position"]
            routed: dict[int, tuple[list[dict], list[int]]] = {}
            for d in docs:
                if not isinstance(d, dict) or not d.get("doc_id"):
                    raise ValueError("each document is a dict with a non-empty doc_id")
                batch, positions = routed.setdefault(_core.shard_of(d["doc_id"], n), ([], []))
                batch.append(d)
                positions.append(position)
                position += 1
            ray = _ray()
            shards = sorted(routed)
            refs = [self._actors[s].add.remote(*routed[s], self._encoder_spec) for s in shards]
            applied, failure = [], None
            for s, ref in zip(shards, refs):
                try:
                    ray.get(ref, timeout=self.timeout + 3600)
                    applied.append(s)
                except Exception as e:  # noqa: BLE001 - re-raised below after undoing the others
                    failure = failure or e
            if failure is not None:
                for s in applied:  # undo: those shards remove what they added
                    ids = [d["doc_id"] for d in routed[s][0]]
                    ray.get(self._actors[s].remove.remote(ids, ""))
                raise failure
            self._manifest = dict(self._manifest, next_position=position)
            self._publish()

    def remove(self, doc_ids: str | Sequence[str], corpus: str = "") -> None:
        """Remove documents by doc_id from their shards (corpus: only that corpus's). Unknown ids raise
        KeyError and nothing changes."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        if not ids:
            raise ValueError("no doc_ids to remove")
        n = len(self._actors)
        with self._lock.write():
            routed: dict[int, list[str]] = {}
            for d in ids:
                routed.setdefault(_core.shard_of(d, n), []).append(d)
            missing = self._get([self._actors[s].missing.remote(routed[s]) for s in sorted(routed)])
            unknown = [d for m in missing for d in m]
            if unknown:
                raise KeyError(f"unknown doc_id(s): {', '.join(unknown[:5])}")
            self._get([self._actors[s].remove.remote(routed[s], corpus) for s in sorted(routed)])
            self._publish()

    # -- what it holds ---------------------------------------------------------

    @property
    def num_shards(self) -> int:
        return len(self._actors)

    @property
    def stats(self) -> CollectionStats:
        """The collection's statistics (documents, passages, version, ...)."""
        return self._stats

    def __len__(self) -> int:
        return self._stats.passages

    @property
    def num_documents(self) -> int:
        return self._stats.documents

    def shard_stats(self) -> list[dict]:
        """Each shard's Index.stats() (passages, memory_bytes, dense_index, ...)."""
        return self._get([a.index_stats.remote() for a in self._actors])

    def shard_pids(self) -> list[int]:
        """The process id of each shard actor (for operations and fault tests)."""
        return self._get([a.ready.remote() for a in self._actors])

    def _actor(self, shard: int):
        return self._actors[shard]


def _absolute(corpora):
    """Index.build's corpora argument with absolute paths."""
    def one(item):
        if isinstance(item, tuple) and len(item) == 2:
            return (item[0], os.path.abspath(os.fspath(item[1])))
        return os.path.abspath(os.fspath(item))
    if isinstance(corpora, dict):
        return {name: os.path.abspath(os.fspath(p)) for name, p in corpora.items()}
    if isinstance(corpora, (str, os.PathLike)):
        return one(corpora)
    return [one(c) for c in corpora]


def _next_position(path: str, shards: int) -> int:
    """One past the largest document position the shards hold."""
    last = -1
    for s in range(shards):
        order = _read_json(_order_file(path, s), f"document positions of shard {s}")
        if order:
            last = max(last, order[-1])
    return last + 1
