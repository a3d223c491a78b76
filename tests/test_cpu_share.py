"""Torch's threads follow the cores other processes leave free (a shared machine), and answers do not change."""
import subprocess
import sys
import time

import torch

from harness.inference.cpu_share import FreeCores


def test_threads_leave_the_core_another_busy_process_takes():
    free = FreeCores()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        free.others()  # the interval starts now, with the competitor running
        time.sleep(1.0)
        assert free.others() > 0.5  # it saw the competitor's core...
        time.sleep(1.0)
        assert free.adjust() <= max(1, free.cores - 1)  # ...and gave it up
        assert torch.get_num_threads() <= max(1, free.cores - 1)
    finally:
        busy.kill()
        torch.set_num_threads(free.most)


def test_thread_count_does_not_change_the_models_numbers():
    """What makes following the load safe: the logits are bitwise the same on 1 thread as on all of them."""
    from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model

    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    ids = tok(["Arabica grows best at altitude because"] * 4, return_tensors="pt").input_ids
    most = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(1)
            one = model(ids).logits
            torch.set_num_threads(max(2, most))
            many = model(ids).logits
    finally:
        torch.set_num_threads(most)
    assert torch.equal(one, many)
