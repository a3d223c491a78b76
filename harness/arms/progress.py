"""One tqdm bar per adapter while it trains, with its latest loss and eval loss: instead of the Trainer's
default bar and its raw dict line every few steps ({'loss': '0.04103', 'grad_norm': '0.3862', ...}).

The loss curve is not lost: it stays in the Trainer's log history, which run.json and the loss figure read."""
from __future__ import annotations

import logging

from tqdm.auto import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

log = logging.getLogger(__name__)


class LossBar(TrainerCallback):
    """A bar over the optimiser steps, labelled `desc`, showing loss and eval loss; silent when the harness
    logger is quieter than INFO (-q), and on every process but the first of a distributed training."""

    def __init__(self, desc: str):
        self.desc, self.bar, self.shown = desc, None, {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.desc, unit="step",
                            dynamic_ncols=True, disable=not log.isEnabledFor(logging.INFO))

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs:
            self.shown.update({k: f"{logs[k]:.4f}" for k in ("loss", "eval_loss") if k in logs})
            self.bar.set_postfix(self.shown, refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def use_loss_bar(trainer, desc: str) -> None:
    """Swap the Trainer's own progress output for a LossBar."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LossBar(desc))
