"""run.json comes from a typed record (harness/run/record.py) that writes exactly the keys, values and order the
committed example runs hold, so the reports and harness/run/files.py keep reading it."""
import dataclasses
import json
from pathlib import Path

import pytest

from harness.run.record import Prices, RunRecord

EXAMPLES = Path(__file__).parents[1] / "results" / "examples"
WRITTEN_AT_THE_END = ("answers_reused", "answers_logged", "finished")  # added by the run once every arm is done
# The forecast's plan and calibration (harness/run/planning.py), added once planned; runs before --budget lack it.
ADDED = ("forecast", *WRITTEN_AT_THE_END)


@pytest.mark.parametrize("example", ["coffee", "coffee-from-documents"])
def test_the_record_writes_a_committed_run_json_back_unchanged(example):
    written = json.loads((EXAMPLES / example / "run.json").read_text())
    known_before_arms = {k: v for k, v in written.items() if k not in ADDED}
    again = RunRecord(**known_before_arms).as_json()
    assert list(again) == list(known_before_arms)  # same keys, in the same order
    assert again == known_before_arms


def test_every_field_is_a_key_a_committed_run_holds():
    written = json.loads((EXAMPLES / "coffee" / "run.json").read_text())
    assert [f.name for f in dataclasses.fields(RunRecord)] + list(ADDED) == list(written)


def test_as_json_is_a_copy_the_run_may_extend():
    written = json.loads((EXAMPLES / "coffee" / "run.json").read_text())
    record = RunRecord(**{k: v for k, v in written.items() if k not in ADDED})
    out = record.as_json()
    out["config"]["seed"] = -1
    out["pipelines"].append("extra")
    assert record.config["seed"] != -1 and "extra" not in record.pipelines


@pytest.mark.parametrize("device, override, hour", [("cpu", None, 0.1), ("cuda", None, 2.5), ("cuda:1", None, 2.5),
                                                    ("cpu", 0.7, 0.7), ("cuda", 0.7, 0.7)])
def test_the_hour_price_is_the_override_else_the_device_s(device, override, hour):
    prices = Prices(cpu_hour_usd=0.1, gpu_hour_usd=2.5, hour_usd=override, per_million_tokens_usd=0.3)
    # On CUDA the prices also say how many GPUs the hour covers (one here; tests/test_gpu_vllm.py prices eight).
    gpus = {"gpus": 1} if device.startswith("cuda") else {}
    assert prices.on(device) == {"hour_usd": hour, "per_million_tokens_usd": 0.3, **gpus}
