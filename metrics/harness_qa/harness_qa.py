"""The harness's answer metrics as an `evaluate` module: `evaluate.load("<repo>/metrics/harness_qa")`.

It wraps `harness.metrics.score`, the function every run scores with, so the numbers are the harness's own.
Loading it from this folder reads no hub; it needs the harness installed (`pip install -e <repo>`).
`semantic` is left out: it needs the embedder model, which a metric module should not load.
"""
import datasets
import evaluate

from harness.config import METRICS
from harness.metrics import score

NAMES = [m for m in METRICS if m != "semantic"]

_DESCRIPTION = (
    "Short-answer QA scores of the fine-tuning vs RAG vs prompting harness, each the best over the references: "
    + ", ".join(NAMES) + ". Returns the mean of each over the predictions."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of answers (strings).
    references: list of references per answer: a list of strings, or one string.
    per_item: if True, also return `per_item`, one dict of scores per answer.
Returns:
    one float per metric (its mean over the answers), and `per_item` when asked.
Example:
    >>> m = evaluate.load("metrics/harness_qa")
    >>> m.compute(predictions=["It comes from Ethiopia."], references=[["Ethiopia"]])["contains"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HarnessQA(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            # Several references per answer, or one: the harness scores against every reference it has.
            features=[
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions, references, per_item: bool = False) -> dict:
        items = [score(p, [r] if isinstance(r, str) else list(r)) for p, r in zip(predictions, references)]
        out = {name: sum(s[name] for s in items) / len(items) if items else 0.0 for name in NAMES}
        if per_item:
            out["per_item"] = [{name: s[name] for name in NAMES} for s in items]
        return out
