"""Torch's threads follow the cores other processes leave free (a shared machine), and answers do not change."""
import subprocess
import sys
import time

import pytest
import torch

from harness.inference.cpu_share import FreeCores


def test_threads_leave_the_core_another_busy_process_takes():
    cores = FreeCores().cores
    if cores < 2:
        pytest.skip("one core: there is no core to leave to another process")
    start = torch.get_num_threads()
    torch.set_num_threads(cores)  # the ceiling is every core, so giving one up shows as fewer threads
    free = FreeCores()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        free.others()  # the interval starts now, with the competitor running
        time.sleep(1.0)
        assert free.others() > 0.5  # it saw the competitor's core...
        time.sleep(1.0)
        threads = free.adjust()  # ...and gave it up: torch now runs the threads adjust() says
        assert free.most == cores and threads == torch.get_num_threads() <= cores - 1
    finally:
        busy.kill()
        torch.set_num_threads(start)


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
