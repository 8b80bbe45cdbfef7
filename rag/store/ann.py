"""FAISS index types for the chunk vectors: exact search for small corpora, approximate beyond.

Four index types, chosen with ``index.type`` in the config:

======  =============================  ==================  ===================
type    FAISS factory string           memory per chunk    search
======  =============================  ==================  ===================
flat    ``IDMap2,Flat``                4·d + 8 bytes       exact, O(n)
hnsw    ``IDMap2,HNSW32``              4·d + ~280 bytes    graph, ~O(log n)
ivf     ``IDMap2,IVF{nlist},Flat``     4·d + ~16 bytes     ``nprobe`` lists
ivf+pq  ``IDMap2,IVF{nlist},PQ{m}np``  m + ~16 bytes       ``nprobe`` lists
======  =============================  ==================  ===================

PQ (``index.pq_bytes``, ivf only) trades recall for memory: each vector keeps ``m`` bytes
of codes, so scores are approximate and recall@10 against exact search may stay below
``recall_target`` whatever ``nprobe`` is (the build records ``recall_met: false``).

``auto`` (the default) picks by corpus size:

* fewer than :data:`AUTO_FLAT_MAX` (50,000) chunks: ``flat``. Exact, nothing to tune, and a
  scan of 50k 384-d vectors takes about 3.5 ms, well inside a query's budget (embedding the
  question alone takes 3-15 ms).
* from 50,000 chunks on: ``ivf`` (with ``pq_bytes`` when set). Measured on clustered
  synthetic corpora (``benchmarks/run.py``, figures in ``benchmarks/README.md``), ivf beats
  hnsw at every size from 100k on: recall@10 0.99 at 0.2-0.4 ms a search, a build 5x
  faster (40 s per million chunks on two cores, which matters because every build and
  incremental update rebuilds the index), ~250 bytes per chunk less memory, and its tuning
  on probe queries carries over to real queries. hnsw needed twice the tuned ``efSearch``
  to reach 0.95 on fresh queries at 100k, and at 1M chunks its graph (M=32,
  efConstruction 40) took 250 s to build and reached only 0.81 at efSearch 128.

Approximate indexes are tuned when they are built: ``efSearch`` (hnsw) or ``nprobe`` (ivf)
is raised step by step until recall@10 against exact search reaches ``recall_target`` on
:data:`TUNE_QUERIES` probe queries made from the corpus itself (a stored vector with noise
added, so that a probe sits about as far from its neighbours as a real question does).
Probes have one clearly nearest vector, which a graph search finds more easily than a query
that falls between clusters, so hnsw then searches with :data:`HNSW_EF_FACTOR` times the
tuned ``efSearch`` (at 100k chunks, 24 gave 0.93 on fresh queries and 48 gave 0.99).
The chosen value is saved inside the FAISS file, so a loaded index searches with it.

Threads: FAISS searches one question at a time, and an OpenMP team of two threads then costs
far more than it saves (on a busy two-core machine a 10k flat search took 44 ms with two
threads and 0.3 ms with one). :func:`prepare_for_queries` (called when an index is loaded)
sets FAISS to one thread; :func:`build_index` uses every core while it builds and trains.

Example:
    >>> built = build_index(vectors, ids=rows, index_type="auto")   # 100k vectors
    >>> built.info["type"], built.info.get("nprobe")
    ('ivf', 8)
    >>> scores, ids = built.index.search(query_vectors, 10)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")
AUTO_FLAT_MAX = 50_000

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
TUNE_QUERIES = 256
TUNE_K = 10
# Probe queries are stored vectors plus noise, scaled so their cosine to the source is 0.6.
# Real questions sit a little closer to their best chunk (MiniLM on rgb-en-fact: median best
# cosine 0.75, 10th best 0.54): probes a little harder than real questions err on the side
# of recall (at 0.7, fresh queries of the benchmark's corpora fell just short of 0.95).
TUNE_NOISE_COSINE = 0.6
# Tuning aims this far above recall_target on the probes, so that queries unlike the probes
# still reach the target.
TUNE_MARGIN = 0.02
# Tuning stops when two steps in a row each add at most this much recall.
TUNE_PLATEAU = 0.002
# hnsw searches with this many times the efSearch its probes needed (see the module docstring).
HNSW_EF_FACTOR = 2
EF_SEARCH_STEPS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


@dataclass(frozen=True)
class BuiltIndex:
    """A FAISS index with what was chosen while building it.

    Attributes:
        index: an ``IndexIDMap2`` whose ids are the chunk rows.
        info: ``type`` (resolved), ``requested``, ``factory``, the search parameter
            (``ef_search`` or ``nprobe``), the measured ``tuned_recall`` and ``build_seconds``;
            recorded in the index manifest.
    """

    index: Any
    info: dict[str, Any] = field(default_factory=dict)


def resolve_type(index_type: str, n: int) -> str:
    """The concrete index type for ``index_type`` at corpus size ``n`` (``auto`` picks by size).

    Raises:
        ValueError: unknown type (the message lists the valid ones).
    """
    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type!r}; choose from {list(INDEX_TYPES)}")
    if index_type != "auto":
        return index_type
    return "flat" if n < AUTO_FLAT_MAX else "ivf"


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 2·sqrt(n), with at least 39 training points per list."""
    return max(1, min(int(round(2 * math.sqrt(max(n, 1)))), n // 39))


def factory_string(index_type: str, n: int, dim: int, pq_bytes: int = 0) -> str:
    """The FAISS ``index_factory`` string for a concrete type (see the module table)."""
    if index_type == "flat":
        return "IDMap2,Flat"
    if index_type == "hnsw":
        return f"IDMap2,HNSW{HNSW_M}"
    if index_type == "ivf":
        if pq_bytes:
            if dim % pq_bytes:
                divisors = [m for m in range(1, dim + 1) if dim % m == 0 and m <= 128]
                raise ValueError(
                    f"index.pq_bytes must divide the embedding dimension {dim}, got {pq_bytes}; try one of {divisors}"
                )
            # 8-bit codes need 256 training points per sub-quantiser; small corpora get fewer bits.
            bits = max(1, min(8, int(math.log2(max(n, 2)))))
            # np: skip polysemous training (minutes, and unused here).
            return (
                f"IDMap2,IVF{ivf_lists(n)},PQ{pq_bytes}np"
                if bits == 8
                else f"IDMap2,IVF{ivf_lists(n)},PQ{pq_bytes}x{bits}np"
            )
        return f"IDMap2,IVF{ivf_lists(n)},Flat"
    raise ValueError(f"unknown index type {index_type!r}; choose from {list(INDEX_TYPES)}")


def prepare_for_queries() -> None:
    """Make FAISS search single-threaded (see "Threads" above); builds still use every core."""
    import faiss

    faiss.omp_set_num_threads(1)


@contextmanager
def _all_cores() -> Iterator[None]:
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def build_index(
    vectors: np.ndarray,
    ids: np.ndarray | None = None,
    index_type: str = "auto",
    *,
    pq_bytes: int = 0,
    recall_target: float = 0.95,
    seed: int = 0,
) -> BuiltIndex:
    """Build a FAISS inner-product index over normalised ``vectors`` and tune its search.

    Args:
        vectors: ``(n, d)`` float32, L2-normalised.
        ids: int64 ids (chunk rows), default ``0..n-1``.
        index_type: ``auto``, ``flat``, ``hnsw`` or ``ivf``.
        pq_bytes: for ``ivf``, compress each vector to this many PQ bytes (0: keep it whole).
        recall_target: recall@10 against exact search the tuned parameters must reach on
            the probe queries (approximate types only).
        seed: seeds the IVF training sample and the probe queries (builds are repeatable).

    Returns:
        A :class:`BuiltIndex`.

    Raises:
        ValueError: unknown type, a ``pq_bytes`` that does not divide the dimension, or misshapen input.
    """
    # recall_target and pq_bytes come checked from IndexConfig (the edge); not checked again here.
    with _all_cores():
        return _build(vectors, ids, index_type, pq_bytes, recall_target, seed)


def _build(
    vectors: np.ndarray, ids: np.ndarray | None, index_type: str, pq_bytes: int, recall_target: float, seed: int
) -> BuiltIndex:
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-d array (n, dim), got shape {x.shape}")
    n, dim = x.shape
    ids = np.arange(n, dtype=np.int64) if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
    if len(ids) != n:
        raise ValueError(f"got {len(ids)} ids for {n} vectors")
    t0 = time.perf_counter()
    kind = resolve_type(index_type, n)
    if kind == "ivf" and n < 39:
        kind = "flat"  # too few vectors to train even one list; exact search is instant anyway
    if kind == "hnsw" and n < 2:
        kind = "flat"
    factory = factory_string(kind, n, dim, pq_bytes if kind == "ivf" else 0)
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    info: dict[str, Any] = {"type": kind, "requested": index_type, "factory": factory}
    if kind == "hnsw":
        inner = faiss.downcast_index(index.index)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        if pq_bytes:
            # 10 k-means iterations instead of 25 for the PQ codebooks: 2.5x faster training,
            # and the tuned nprobe absorbs the difference.
            faiss.downcast_index(ivf).pq.cp.niter = 10
        rng = np.random.default_rng(seed)
        # 40 points per list: above FAISS' 39 minimum, and k-means time grows with the sample.
        sample = x if n <= 40 * ivf.nlist else x[np.sort(rng.choice(n, 40 * ivf.nlist, replace=False))]
        index.train(sample)
        # Lets FAISS reconstruct a vector by id (used by MMR de-duplication and incremental builds).
        ivf.make_direct_map()
        info["nlist"] = int(ivf.nlist)
        if pq_bytes:
            info["pq_bytes"] = int(pq_bytes)
    if n:
        index.add_with_ids(x, ids)
    if kind != "flat" and n:
        info.update(_tune(index, kind, x, recall_target, seed))
    info["build_seconds"] = round(time.perf_counter() - t0, 3)
    return BuiltIndex(index, info)


def probe_queries(
    vectors: np.ndarray, count: int = TUNE_QUERIES, seed: int = 0, cosine: float | None = None
) -> np.ndarray:
    """Query-like vectors made from ``vectors``: random members with noise, renormalised.

    Each probe has cosine ``cosine`` (in expectation) to the member it came from.
    """
    cosine = TUNE_NOISE_COSINE if cosine is None else cosine
    rng = np.random.default_rng(seed + 1)
    n, dim = vectors.shape
    base = vectors[rng.choice(n, min(count, n), replace=False)]
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= (noise * base).sum(axis=1, keepdims=True) * base  # orthogonal to the member
    noise /= np.linalg.norm(noise, axis=1, keepdims=True) + 1e-12
    q = cosine * base + math.sqrt(max(0.0, 1 - cosine**2)) * noise
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=np.float32)


def exact_neighbours(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top-``k`` by inner product (brute force with FAISS' flat kernel).

    ``faiss.knn`` reads ``vectors`` in place: no second copy of a million-vector corpus.
    """
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    _, pos = faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32), x, min(k, len(x)), metric=faiss.METRIC_INNER_PRODUCT
    )
    return np.where(pos >= 0, ids[np.clip(pos, 0, None)], -1)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k ids that appear in its found top-k."""
    hits = sum(len(set(f[f >= 0]) & set(t[t >= 0])) for f, t in zip(found, truth))
    total = sum(int((t >= 0).sum()) for t in truth)
    return hits / total if total else 1.0


def set_search_param(index: Any, value: int) -> None:
    """Set ``efSearch`` (hnsw) or ``nprobe`` (ivf) on an index built here; no-op for flat."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else faiss.downcast_index(index)
    if hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = int(value)
        return
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = int(min(value, ivf.nlist))


def search_param(index: Any) -> tuple[str, int] | None:
    """``("ef_search", v)`` or ``("nprobe", v)`` for approximate indexes; None for flat."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else faiss.downcast_index(index)
    if hasattr(inner, "hnsw"):
        return "ef_search", int(inner.hnsw.efSearch)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return "nprobe", int(ivf.nprobe)
    return None


def search_parameters(index: Any, selector: Any = None) -> Any:
    """FAISS ``SearchParameters`` of the right kind for ``index``, carrying its tuned value.

    IVF indexes refuse plain ``SearchParameters`` ("params have incorrect type"), so a
    filtered search (an ``IDSelector``) must pass these instead.
    """
    import faiss

    param = search_param(index)
    if param is None:
        return faiss.SearchParameters(sel=selector) if selector is not None else faiss.SearchParameters()
    name, value = param
    if name == "ef_search":
        p = faiss.SearchParametersHNSW(efSearch=value)
    else:
        p = faiss.SearchParametersIVF(nprobe=value)
    if selector is not None:
        p.sel = selector
    return p


def _tune(index: Any, kind: str, x: np.ndarray, target: float, seed: int) -> dict[str, Any]:
    """Smallest efSearch / nprobe whose recall@10 on probe queries reaches ``target``."""
    import faiss

    n = len(x)
    queries = probe_queries(x, seed=seed)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    truth = exact_neighbours(x, ids, queries, TUNE_K)
    if kind == "hnsw":
        name, steps = "ef_search", list(EF_SEARCH_STEPS)
    else:
        nlist = faiss.extract_index_ivf(index).nlist
        name, steps = "nprobe", sorted({min(nlist, 2**i) for i in range(0, int(math.log2(max(nlist, 1))) + 2)})
    goal = min(1.0, target + TUNE_MARGIN)
    best = (steps[-1], 0.0)
    previous, flat = -1.0, 0
    for value in steps:
        if name == "ef_search" and value < TUNE_K:
            continue
        set_search_param(index, value)
        _, found = index.search(queries, min(TUNE_K, n))
        recall = recall_at_k(found, truth)
        if recall > best[1]:
            best = (value, recall)
        if recall >= goal:
            best = (value, recall)
            break
        # Recall has stopped rising (PQ codes cap it below the goal): wider searches would
        # only cost time, up to a full scan per probe at the last step (35 s at 1M chunks).
        flat = flat + 1 if recall <= previous + TUNE_PLATEAU else 0
        if flat >= 2:
            break
        previous = recall
    if name == "ef_search" and best[1] >= goal:
        value = min(EF_SEARCH_STEPS[-1], best[0] * HNSW_EF_FACTOR)
        set_search_param(index, value)
        best = (value, recall_at_k(index.search(queries, min(TUNE_K, n))[1], truth))
    set_search_param(index, best[0])
    return {
        name: int(best[0]),
        "tuned_recall": round(float(best[1]), 4),
        "recall_target": target,
        "recall_met": best[1] >= target,
    }


def memory_bytes(index: Any) -> int:
    """Bytes the index occupies when serialised (what loading it takes in RAM, give or take).

    Counted as FAISS writes, without holding a serialised copy (1.5 GB for 1M flat vectors).
    """
    import faiss

    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    writer = faiss.PyCallbackIOWriter(count)
    faiss.write_index(index, writer)
    del writer  # flushes the last buffered chunk
    return total
