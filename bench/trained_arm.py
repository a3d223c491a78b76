"""What the training benches share: the embedded model loaded as `harness run` loads it, with the training copy
its precision rule gives, around a task config the bench has overridden."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_shared(task, cfg):
    """(Shared, Precision) for `task` under `cfg`, with a throwaway adapter cache."""
    from harness.arms.pipeline import Shared
    from harness.arms.precision import training_copy_for_task
    from harness.inference.models import DEFAULT_EMBEDDER, DEFAULT_MODEL, load_embedder, load_generator, resolve_model
    from harness.run.machine import bf16_training_pays

    src = resolve_model(DEFAULT_MODEL)
    model, tok = load_generator(src, "cpu")
    train_model, precision = training_copy_for_task(model, tok, task.knowledge.pairs, cfg.prompt.system,
                                                    bf16_training_pays())
    shared = Shared(model, tok, load_embedder(DEFAULT_EMBEDDER), cfg, src.fingerprint(),
                    Path(tempfile.mkdtemp()), train_model=train_model)
    return shared, precision
