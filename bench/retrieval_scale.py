"""Retrieval at scale: build time, single-query latency and recall@10 of the exact index and of HNSW.

    .venv/bin/python bench/retrieval_scale.py --sizes 1000,10000,100000,1000000

Both indexes are made by harness/retrieval/ann.py with the parameters the harness uses (IndexFlatIP; IndexHNSWFlat M=32,
efConstruction=128, efSearch=128, inner product). Recall@10 is the share of the exact top 10 that HNSW returns,
averaged over the queries; latency is one `search(q, 10)` call per query, timed separately.

The vectors. Embedding a million real chunks on a CPU takes hours, so the corpus is synthetic but shaped like
real embeddings:
1. Anchors: --anchors (3,000) distinct sentences from templates over six domains (coffee, medicine, law, software,
   finance, gardening; subject + predicate + object + optional qualifier, e.g. "The espresso grinder needs a finer
   grind setting in most cases.") embedded with the harness's default embedder (all-MiniLM-L6-v2, 384-d,
   normalised).
2. Corpus vectors: normalise(a_p + w * a_s + 0.6 * n), where a_p and a_s are random anchors, w ~ U(0, 0.5) (a chunk
   mostly about one thing, partly about another) and n = sum_j g_j * (a_rj - mean anchor) / sqrt(8) over 8 more
   random anchors r_j with g_j ~ N(0, 1): noise drawn from the anchors' own covariance, so vectors vary along the
   directions real MiniLM embeddings vary along instead of isotropically (isotropic noise is much harder for any
   approximate index than real text).
3. Queries (--queries, 1,000): a random corpus vector plus 0.8 * n (n drawn as above), normalised: a question
   close to, but not a copy of, one chunk.
The script prints the mean similarity of each query's 1st and 10th exact neighbour, to compare with real text:
for real questions over the embedded anchors it is about 0.74 / 0.65.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import time

import faiss
import numpy as np
import torch

from harness.retrieval import ann
from harness.inference.models import DEFAULT_EMBEDDER, load_embedder

DOMAINS = {
    "coffee": (["The espresso grinder", "A light roast", "Cold brew", "The barista", "Arabica beans",
                "The pour-over cone", "Milk foam", "The green coffee importer", "A washed Ethiopian lot",
                "The roaster's drum"],
               ["extracts", "tastes of", "needs", "loses", "is graded by", "develops", "is stored with",
                "pairs well with", "is ruined by", "is priced by"],
               ["bright citric acidity", "a finer grind setting", "water at 93 degrees", "the cupping score",
                "nitrogen flushing", "first crack", "a 1:16 brew ratio", "bergamot notes", "channeling in the puck",
                "the altitude of the farm"]),
    "medicine": (["The patient", "A beta blocker", "The cardiologist", "Type 2 diabetes", "The MRI scan",
                  "An ACE inhibitor", "The nurse", "Chronic kidney disease", "The vaccine", "A randomized trial"],
                 ["reduces", "is monitored with", "is contraindicated with", "increases the risk of",
                  "is diagnosed by", "responds to", "requires", "was compared against", "prevents", "is measured by"],
                 ["blood pressure", "serum creatinine", "an HbA1c test", "atrial fibrillation",
                  "a daily dose of metformin", "hospital readmission", "a placebo", "influenza infection",
                  "the ejection fraction", "potassium levels"]),
    "law": (["The tenant", "The appellate court", "A non-compete clause", "The contract", "The plaintiff",
             "The landlord", "A trademark", "The statute of limitations", "The arbitrator", "An employment agreement"],
            ["is bound by", "was overturned by", "is unenforceable under", "must disclose", "may terminate",
             "is protected by", "expires after", "was breached by", "requires written notice of", "is governed by"],
            ["the security deposit", "state law", "thirty days", "the lower court ruling", "confidential information",
             "a material breach", "the force majeure clause", "the registered mark", "binding arbitration",
             "punitive damages"]),
    "software": (["The garbage collector", "A Kubernetes pod", "The database index", "The compiler",
                  "A race condition", "The load balancer", "The unit test", "A memory leak", "The REST endpoint",
                  "The build cache"],
                 ["slows down", "is triggered by", "is fixed by", "returns", "depends on", "retries",
                  "is invalidated by", "serializes", "is exposed through", "allocates"],
                 ["a 404 status code", "the heap", "a mutex", "the query planner", "a stale lockfile",
                  "JSON payloads", "an environment variable", "the readiness probe", "TLS certificates", "a b-tree"]),
    "finance": (["The central bank", "A bond ETF", "The quarterly report", "Inflation", "The hedge fund",
                 "A mortgage rate", "The balance sheet", "Dividend yield", "The auditor", "A currency swap"],
                ["raises", "is hedged against", "reports", "erodes", "is discounted by", "tracks",
                 "is reconciled with", "outperforms", "is taxed as", "depends on"],
                ["interest rates", "free cash flow", "the yield curve", "operating margin", "capital gains",
                 "the S&P 500", "foreign exchange risk", "goodwill impairment", "real wages", "the credit rating"]),
    "gardening": (["Tomato seedlings", "The compost heap", "Clay soil", "A rose bush", "The raised bed", "Aphids",
                   "The apple tree", "Mulch", "Garlic bulbs", "The greenhouse"],
                  ["need", "are damaged by", "improves", "should be pruned before", "attracts", "retains",
                   "is planted in", "suffers from", "benefits from", "is protected from"],
                  ["late frost", "nitrogen fertilizer", "full sun", "ladybirds", "powdery mildew", "drip irrigation",
                   "early spring", "well-drained loam", "a pH of 6.5", "blossom end rot"]),
}
QUALIFIERS = ["", " in most cases", " according to the manual", " since 2019", " under normal conditions",
              " as the guide explains", " for small teams", " in cold climates", " during the first week",
              " unless stated otherwise"]
CORPUS_NOISE, QUERY_NOISE, NOISE_TERMS = 0.6, 0.8, 8
GEN_ROWS = 10_000  # corpus rows generated at a time: the noise temporaries are rows x 8 x 384 floats


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        subjects, predicates, objects = DOMAINS[rng.choice(sorted(DOMAINS))]
        out.add(f"{rng.choice(subjects)} {rng.choice(predicates)} {rng.choice(objects)}{rng.choice(QUALIFIERS)}.")
    return sorted(out)


def _normalised(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _noise(anchors: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Random combinations of centred anchors: noise with the covariance of real embeddings."""
    centred = anchors - anchors.mean(axis=0)
    picks = rng.integers(0, len(anchors), (rows, NOISE_TERMS))
    weights = rng.standard_normal((rows, NOISE_TERMS, 1)).astype(np.float32)
    return (centred[picks] * weights).sum(axis=1) / np.float32(np.sqrt(NOISE_TERMS))


def corpus(anchors: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, anchors.shape[1]), dtype=np.float32)
    for start in range(0, n, GEN_ROWS):
        rows = min(GEN_ROWS, n - start)
        main, side = anchors[rng.integers(0, len(anchors), rows)], anchors[rng.integers(0, len(anchors), rows)]
        mix = rng.uniform(0, 0.5, (rows, 1)).astype(np.float32)
        out[start:start + rows] = _normalised(main + mix * side + CORPUS_NOISE * _noise(anchors, rows, rng))
    return out


def queries(anchors: np.ndarray, vectors: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    near = vectors[rng.integers(0, len(vectors), n)]
    return _normalised(near + QUERY_NOISE * _noise(anchors, n, rng))


def build(vectors: np.ndarray, approximate: bool) -> tuple[faiss.Index, float]:
    index = ann.new_index(vectors.shape[1], approximate)
    start = time.perf_counter()
    index.add(vectors)
    return index, time.perf_counter() - start


def latencies_ms(index: faiss.Index, qs: np.ndarray, k: int) -> np.ndarray:
    out = np.empty(len(qs))
    for i, q in enumerate(qs):
        start = time.perf_counter()
        index.search(q[None], k)
        out[i] = time.perf_counter() - start
    return out * 1e3


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found, truth)]))


def measure(anchors: np.ndarray, n: int, n_queries: int, seed: int) -> list[dict]:
    rng = np.random.default_rng([seed, n])
    vectors = corpus(anchors, n, rng)
    qs = queries(anchors, vectors, n_queries, rng)
    rows = []
    exact, secs = build(vectors, approximate=False)
    sims, truth = exact.search(qs, 10)
    lat = latencies_ms(exact, qs, 10)
    rows.append(dict(n=n, kind=ann.EXACT, build_s=secs, lat=lat, recall=1.0, mb=ann.nbytes(exact) / 1e6))
    print(f"  {n:,}: mean similarity of the 1st / 10th exact neighbour {sims[:, 0].mean():.3f} / "
          f"{sims[:, 9].mean():.3f}", flush=True)
    del exact
    hnsw, secs = build(vectors, approximate=True)
    lat = latencies_ms(hnsw, qs, 10)
    rows.append(dict(n=n, kind=ann.HNSW, build_s=secs, lat=lat, recall=recall_at(hnsw.search(qs, 10)[1], truth),
                     mb=ann.nbytes(hnsw) / 1e6))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| chunks | index | default picks | build s | p50 ms | p95 ms | recall@10 vs exact | index MB |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        picked = ann.HNSW if ann.wants_approximate(r["n"], ann.APPROX_ABOVE) else ann.EXACT
        lines.append(f"| {r['n']:,} | {r['kind']} | {'yes' if picked == r['kind'] else ''} | {r['build_s']:.2f} | "
                     f"{np.percentile(r['lat'], 50):.2f} | {np.percentile(r['lat'], 95):.2f} | "
                     f"{r['recall']:.3f} | {r['mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000,1000000", help="comma-separated chunk counts")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--anchors", type=int, default=3000, help="real sentences embedded to shape the vectors")
    ap.add_argument("--threads", type=int, default=None, help="faiss and torch threads (default: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    anchors = load_embedder(DEFAULT_EMBEDDER).encode(sentences(args.anchors, args.seed), batch_size=64,
                                                     normalize_embeddings=True, convert_to_numpy=True)
    anchors = np.asarray(anchors, dtype=np.float32)
    print(f"embedded {len(anchors):,} anchor sentences in {time.perf_counter() - start:.0f} s", flush=True)
    rows = [r for n in sizes for r in measure(anchors, n, args.queries, args.seed)]
    print(f"\n{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, faiss {faiss.__version__}, "
          f"{faiss.omp_get_max_threads()} faiss threads, {args.queries:,} single queries, k=10, "
          f"default threshold: exact up to {ann.APPROX_ABOVE:,} vectors\n")
    print(table(rows))


if __name__ == "__main__":
    main()
