"""Which FAISS index holds the vectors (exact below a size, HNSW above it) and how it goes to and from disk.

Numbers behind the defaults (bench/retrieval_scale.py, 384-d MiniLM-like vectors, one core; see bench/README.md):
exact search costs 9-12 ms a query at 100k vectors and grows linearly, so near 50k it stops fitting a 5 ms
budget. HNSW (M=32, efConstruction=128, efSearch=128) gave recall@10 0.986-0.994 against exact at 100k (three
draws) for ~0.3 ms a query. IVF-Flat reached similar recall and latency on the same data, but its coarse
quantizer is trained on the vectors present when it is built: an index that keeps growing through `add` (the
freshness experiment, a corpus streamed in batches) would need retraining as lists grow, while HNSW just keeps
inserting.
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# Vectors above which the index becomes approximate; None: always exact, 0: approximate from the start.
APPROX_ABOVE: int | None = 50_000
HNSW_M = 32  # graph degree: memory is +M*8 bytes a vector (level 0 keeps 2*M int32 neighbours)
HNSW_EF_CONSTRUCTION = 128  # 80 lost ~1 point of recall at 100k; build time grows roughly linearly with it
HNSW_EF_SEARCH = 128  # 64 gave 0.985 at 100k, leaving too little margin for 1M; 256 doubles latency for +0.004

EXACT, HNSW = "exact", "hnsw"
_COPY_ROWS = 65_536  # rows copied at a time when an exact index turns into HNSW, bounding the extra memory


def new_index(dim: int, approximate: bool) -> faiss.Index:
    """An empty inner-product index (cosine similarity on normalised vectors)."""
    if not approximate:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def kind(index: faiss.Index) -> str:
    return HNSW if isinstance(index, faiss.IndexHNSW) else EXACT


def wants_approximate(n_vectors: int, approx_above: int | None) -> bool:
    return approx_above is not None and n_vectors > approx_above


def to_hnsw(flat: faiss.IndexFlat) -> faiss.IndexHNSWFlat:
    """The same vectors in an HNSW graph, read straight out of the flat index: nothing is re-embedded."""
    hnsw = new_index(flat.d, approximate=True)
    stored = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    for start in range(0, flat.ntotal, _COPY_ROWS):
        hnsw.add(np.ascontiguousarray(stored[start:start + _COPY_ROWS]))
    return hnsw


def nbytes(index: faiss.Index) -> int:
    """Bytes the index holds, computed rather than serialised (serialising 1M vectors copies 1.5 GB)."""
    if isinstance(index, faiss.IndexHNSW):
        graph = index.hnsw
        return (nbytes(faiss.downcast_index(index.storage)) + graph.neighbors.size() * 4
                + graph.levels.size() * 4 + graph.offsets.size() * 8)
    if isinstance(index, faiss.IndexFlatCodes):
        return int(index.codes.size())
    return int(faiss.serialize_index(index).nbytes)


def write(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read(path: Path, mmap: bool) -> faiss.Index:
    """Reads an index; with mmap the vectors (and HNSW links) stay in the page cache instead of the heap.

    In the installed faiss, IO_FLAG_MMAP only maps IVF inverted lists (as read-only on-disk lists whose `add`
    throws inside OpenMP and kills the process) and reads Flat and HNSW indexes fully into memory. The flag that
    maps IndexFlat codes and HNSW storage is IO_FLAG_MMAP_IFC (faiss >= 1.11); older builds lack it and get a
    normal read. A mapped index is read-only: faiss aborts the process on `add`, so callers must call
    `read(path, mmap=False)` before adding (VectorIndex does).
    """
    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", None) if mmap else None
    index = faiss.read_index(str(path), flag) if flag is not None else faiss.read_index(str(path))
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH  # a search-time setting: follow this module, not the file
    return index


def is_mapped(index: faiss.Index) -> bool:
    """Whether the index's vectors are a read-only view of a mapped file (faiss aborts on `add` to those)."""
    flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    return isinstance(flat, faiss.IndexFlatCodes) and not flat.codes.is_owned
