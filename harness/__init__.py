"""Fine-tuning vs RAG vs prompting, measured on a task folder's questions.

`harness.run(task, ...)` runs an experiment from Python and `harness.load_run(folder)` reads one back
(harness/api.py); `harness` on the command line does the same (harness/cli.py)."""
import os

# Torch's OpenMP threads spin for a long while after each parallel region. On a 2-core machine shared with any
# other busy process that spin steals the other job's core: a LoRA step went from 2.18 s to 14.8 s. A short
# spin keeps quiet-machine speed (2.20 s) and bounds the shared case (4.86 s, the floor being about 2x).
# It must be set before torch loads libgomp, which is why it lives here. A user's own setting wins, and so does
# their OMP_WAIT_POLICY (an explicit spin count would override PASSIVE).
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

# oneDNN, which runs bf16 products on CPU, keeps every kernel it builds for a new shape (1,024 by default), with
# its buffers. Training rows of ever-new lengths (RAFT's prompts) build new ones each micro-batch, and the process
# grew step after step: 48 of coffee's RAFT rows peaked at 2,727 MB with the default and 2,511 MB with 256 kernels
# kept, at the same loss (bench/README.md). Read when oneDNN starts, so set here, before torch loads; a user's
# own setting wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")

__version__ = "0.1.0"

# The subpackage harness.run first, so that the function below keeps the name: Python binds a subpackage to its
# parent's attribute only when it is first imported, and every later `harness.run.*` import finds it in
# sys.modules. harness.api imports nothing heavy at module level: `import harness` stays instant.
import harness.run  # noqa: E402,F401
from harness.api import Run, load_run, run  # noqa: E402,F401
