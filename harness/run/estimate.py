"""The two lines a run prints before any model loads: the memory it should need and the minutes it should take
on this CPU (memory.py and forecast.py compute them; this module words them for the run's options)."""
from __future__ import annotations

import logging
from pathlib import Path

from harness.arms.catalog import arms
from harness.run.preflight import Checked

log = logging.getLogger(__name__)


def estimate_memory(shape, checked: Checked, device: str, dtype, quantize: int | None, bf16_copy: bool,
                    engine: str = "transformers", gpus: int = 1) -> None:
    """The peak memory line, and a warning where it will not fit. `bf16_copy`: whether training may get a bf16
    copy of the model (a CPU whose flags rule bf16 training out never does: the estimate holds none). On CUDA,
    across the `gpus` the run spreads over, with the answering `engine`'s cache."""
    from harness.run.memory import run_estimate

    if shape is None:
        log.info("memory estimate: unavailable for this model (its shape could not be read before loading)")
        return
    task, config = checked.task, checked.config
    longest = max((len(f"{config.prompt.system} {p.question} {p.answer}".split())
                   for p in task.knowledge.pairs + task.update.pairs), default=0)
    weights = {arms(config)[n].weights for n in checked.names}
    est = run_estimate(shape, config, weights, longest, dtype, device, quantize, bf16_training_copy=bf16_copy,
                       engine=engine, gpus=gpus)
    log.info(est.line())
    if not est.fits:
        log.warning(f"this run is estimated to need more memory than is free on {device}; expect it to be "
                    "killed. Smaller --model, a smaller finetune.micro_batch_tokens, or --quantize (CUDA) would help.")


def forecast_time(shape, checked: Checked, freshness: bool, bf16_may: bool, bf16_rule: bool, forced: bool,
                  budget: float | None, cache_dir: Path, resumed_plan=None, gpus: int = 0):
    """One line: the arms' training and answering tokens and the minutes they should take on this CPU, from its
    own measured matrix-product speed (forecast.py), and the plan that fits `budget` minutes (planning.py).
    `bf16_may`: --dtype auto on a CPU; `bf16_rule`: the flags' (or --train-dtype's) word on bf16 training, which
    the speed probe may still veto unless `forced`. `gpus`: on CUDA, how many the run uses; the GPU's matmul
    probe (gpu.matmul_tflops) replaces the CPU's. Returns the plan (planning.Ahead)."""
    import torch

    from harness.arms.precision import bf16_is_fast, matmul_speeds
    from harness.run.machine import cpu_info
    from harness.run.planning import plan_run

    if gpus:  # on CUDA: the GPUs' own measured bf16 speed, training in bf16
        from harness.inference.gpu import matmul_tflops
        from harness.run.forecast import gpu_speeds
        from harness.run.machine import gpu_kind

        speeds, bf16, machine = gpu_speeds(matmul_tflops(), gpus), True, gpu_kind(gpus)
    else:
        speeds = matmul_speeds()
        bf16 = bf16_may and (forced or bf16_is_fast(speeds, bf16_rule))
        machine = cpu_info(torch.get_num_threads())["kind"]
    ahead = plan_run(checked.task, checked.config, checked.names, shape, speeds, bf16, freshness, budget,
                     machine, cache_dir, resumed_plan, on_gpu=bool(gpus))
    log.info(ahead.line)
    return ahead
