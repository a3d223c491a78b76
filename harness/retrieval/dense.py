"""Embedding and a FAISS inner-product index over normalised vectors (i.e. cosine similarity); the chunks it embeds
come from harness/retrieval/chunking.py.

The index is exact up to `ann.APPROX_ABOVE` vectors and HNSW above it (see harness/retrieval/ann.py for why and how it
was tuned); it can be saved to a folder and loaded back memory-mapped:

    folder/index.faiss      faiss.write_index
    folder/passages/        the passages as an Arrow dataset (datasets.save_to_disk), memory-mapped on load
    folder/meta.json        chunking settings, kind and counts, checked on load
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from harness.retrieval import ann
from harness.errors import HarnessError
from harness.retrieval.chunking import Passage, chunk_document
from harness.task.types import Document

FORMAT_VERSION = 1
EMBED_BATCH = 512  # chunks per encode call: bounds memory on huge corpora, moves the bar, keeps length-sorting useful
_FROM_ANN = object()  # approx_above not given: read ann.APPROX_ABOVE when the index is made, so it can be patched


def _batches(items: Iterable[Passage], size: int) -> Iterator[list[Passage]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class PassageStore(Sequence[Passage]):
    """The passages in index order: in memory, or a memory-mapped Arrow table plus those added since loading."""

    def __init__(self, table=None):
        self._table = table  # datasets.Dataset with "doc", "text" and (since imports) "cite" columns, or None
        self._added: list[Passage] = []

    def __len__(self) -> int:
        return (len(self._table) if self._table is not None else 0) + len(self._added)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(range(len(self))[i])
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.take([i])[0]

    def extend(self, passages: Iterable[Passage]) -> None:
        self._added.extend(passages)

    def take(self, ids: Sequence[int]) -> list[Passage]:
        """Passages by position; one Arrow read for all the mapped ones instead of one per id."""
        n_table = len(self._table) if self._table is not None else 0
        mapped = [i for i in ids if i < n_table]
        rows = self._table[mapped] if mapped else {"doc": [], "text": []}
        # An index saved before citations existed has no "cite" column: its passages cite nothing.
        cites = rows.get("cite") or [""] * len(rows["doc"])
        from_table = iter(zip(rows["doc"], rows["text"], [0.0] * len(cites), cites))
        return [Passage(*next(from_table)) if i < n_table else self._added[i - n_table] for i in ids]

    def save(self, folder: Path) -> None:
        from datasets import Dataset, Features, Value, concatenate_datasets

        # Typed columns: an empty store would otherwise save "null" columns that later strings cannot join.
        features = Features({"doc": Value("string"), "text": Value("string"), "cite": Value("string")})
        added = Dataset.from_dict({"doc": [p.doc for p in self._added], "text": [p.text for p in self._added],
                                   "cite": [p.cite for p in self._added]}, features=features)
        table = self._table
        if table is not None and "cite" not in table.column_names:  # saved before citations: they cite nothing
            table = table.add_column("cite", [""] * len(table)).cast(features)
        table = added if table is None else concatenate_datasets([table, added])
        table.save_to_disk(str(folder))

    @classmethod
    def load(cls, folder: Path, mmap: bool) -> PassageStore:
        from datasets import load_from_disk

        return cls(load_from_disk(str(folder), keep_in_memory=not mmap))


class VectorIndex:
    """Inner-product search over chunk embeddings; `add` extends the index without re-embedding what is in it.

    approx_above: vector count above which the exact index is replaced by HNSW (default `ann.APPROX_ABOVE`;
    None keeps it exact at any size, 0 makes it approximate from the start). `kind` says which is in use.
    """

    def __init__(self, embedder, chunk_words: int, chunk_overlap: int, *,
                 approx_above: int | None | object = _FROM_ANN):
        self.embedder = embedder
        self.chunk_words, self.chunk_overlap = chunk_words, chunk_overlap
        self.approx_above = ann.APPROX_ABOVE if approx_above is _FROM_ANN else approx_above
        self.dim = embedder.get_embedding_dimension()
        self.index = ann.new_index(self.dim, ann.wants_approximate(1, self.approx_above))
        self.passages: PassageStore = PassageStore()
        self._mapped_from: Path | None = None  # the file a read-only mapped index came from

    @property
    def kind(self) -> str:
        """Which index is in use, for reports: "exact" (IndexFlatIP) or "hnsw" (IndexHNSWFlat)."""
        return ann.kind(self.index)

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        vecs = self.embedder.encode(texts, batch_size=64, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def add(self, docs: Iterable[Document], progress: bool = True) -> int:
        """Chunks, embeds and indexes documents, streaming: any iterable (a generator over a huge corpus too)
        is consumed `EMBED_BATCH` chunks at a time. The bar appears only when adding takes over a second."""
        chunks = (c for d in docs for c in chunk_document(d, self.chunk_words, self.chunk_overlap))
        added = 0
        with tqdm(desc="indexing", unit=" chunks", delay=1, disable=not progress) as bar:
            for batch in _batches(chunks, EMBED_BATCH):
                self.add_vectors(batch, self.embed([c.text for c in batch]))
                added += len(batch)
                bar.update(len(batch))
        return added

    def add_vectors(self, passages: Sequence[Passage], vectors: np.ndarray) -> None:
        """Indexes passages whose normalised embeddings are already computed (one row per passage)."""
        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        if not len(passages):
            return
        if self._mapped_from is not None:
            # faiss aborts the whole process on `add` to a mapped (read-only) index: take a private copy first.
            self.index, self._mapped_from = ann.read(self._mapped_from, mmap=False), None
        if self.kind == ann.EXACT and ann.wants_approximate(self.index.ntotal + len(passages), self.approx_above):
            self.index = ann.to_hnsw(self.index)
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.passages.extend(passages)

    def search(self, queries: list[str], k: int) -> list[list[Passage]]:
        if not len(self.passages):
            return [[] for _ in queries]
        scores, ids = self.index.search(self.embed(queries), min(k, len(self.passages)))
        return [self._hits(row_s, row_i) for row_s, row_i in zip(scores, ids)]

    def _hits(self, scores: np.ndarray, ids: np.ndarray) -> list[Passage]:
        found = [(float(s), int(i)) for s, i in zip(scores, ids) if i >= 0]  # HNSW may return fewer than k
        return [dataclasses.replace(p, score=s) for (s, _), p in zip(found, self.passages.take([i for _, i in found]))]

    @property
    def nbytes(self) -> int:
        return ann.nbytes(self.index)

    def save(self, folder: str | Path) -> Path:
        """Writes index, passages and settings to `folder`, replacing what is there.

        Everything is written to a sibling temporary folder first and renamed into place, so a crash never
        leaves half an index, and saving over the folder this index is mapped from never truncates a file
        under a live mapping (the old inodes stay readable until unmapped)."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            ann.write(self.index, tmp / "index.faiss")
            self.passages.save(tmp / "passages")
            meta = {"format": FORMAT_VERSION, "kind": self.kind, "dim": self.dim, "vectors": self.index.ntotal,
                    "chunk_words": self.chunk_words, "chunk_overlap": self.chunk_overlap,
                    "approx_above": self.approx_above}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            _replace_folder(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    @classmethod
    def load(cls, folder: str | Path, embedder, mmap: bool = True) -> VectorIndex:
        """Reads a saved index. With mmap, vectors and passages are paged in from disk as searches touch
        them, so a large index opens at once and costs little resident memory; the first `add` after loading
        copies the FAISS index into memory (a mapped one is read-only)."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except FileNotFoundError:
            raise HarnessError("no saved index here (meta.json is missing)", folder) from None
        if meta.get("format") != FORMAT_VERSION:
            raise HarnessError(f"index format {meta.get('format')} is not {FORMAT_VERSION}; rebuild it", folder)
        if meta["dim"] != embedder.get_embedding_dimension():
            raise HarnessError(f"the index holds {meta['dim']}-d vectors but the embedder makes "
                               f"{embedder.get_embedding_dimension()}-d ones: load it with the embedder "
                               "that built it", folder)
        self = cls(embedder, meta["chunk_words"], meta["chunk_overlap"], approx_above=meta["approx_above"])
        self.index = ann.read(folder / "index.faiss", mmap)
        self._mapped_from = folder / "index.faiss" if ann.is_mapped(self.index) else None
        self.passages = PassageStore.load(folder / "passages", mmap)
        if len(self.passages) != self.index.ntotal:
            raise HarnessError(f"{len(self.passages)} passages for {self.index.ntotal} vectors: the folder is "
                               "damaged; rebuild the index", folder)
        return self


def _replace_folder(new: Path, target: Path) -> None:
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def index_key(embedder_id: str, docs: Iterable[Document], chunk_words: int, chunk_overlap: int) -> str:
    """Content hash of everything an index depends on: a changed document or setting means a new index."""
    h = hashlib.sha256(json.dumps([FORMAT_VERSION, embedder_id, chunk_words, chunk_overlap]).encode())
    for d in docs:
        h.update(d.path.encode() + b"\0" + d.text.encode() + b"\0")
        if d.source:  # an imported document's chunks cite their source: another source, another index
            h.update(b"source\0" + d.source.encode() + b"\0")
    return h.hexdigest()[:20]


def cached_index(embedder, embedder_id: str, docs: tuple[Document, ...], chunk_words: int, chunk_overlap: int,
                 cache_dir: Path | None) -> VectorIndex:
    """Embeds a corpus once: later builds over the same documents and settings (rag and finetune+rag, a warm
    re-run) memory-map the saved index instead of re-embedding every chunk."""
    if cache_dir is None:
        index = VectorIndex(embedder, chunk_words, chunk_overlap)
        index.add(docs)
        return index
    folder = cache_dir / "indexes" / index_key(embedder_id, docs, chunk_words, chunk_overlap)
    if (folder / "meta.json").is_file():
        return VectorIndex.load(folder, embedder, mmap=True)
    index = VectorIndex(embedder, chunk_words, chunk_overlap)
    index.add(docs)
    index.save(folder)
    return index
