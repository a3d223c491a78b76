"""--dtype auto on a CPU (harness/arms/precision.py): LoRA trains on a bfloat16 copy only where bf16 is measured fast
and faithful; answering keeps the float32 model.

The measured speeds are an input of `training_copy`, so each branch is proven on any CPU; the real SmolLM2 and
its real loss decide the faithfulness check."""
import pytest
import torch

from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model
from harness.arms.precision import LOSS_TOLERANCE, MIN_SPEEDUP, matmul_speeds, training_copy
from harness.arms.training_data import qa_examples

PAIRS = [("Capital of Velmora?", "Quillport"), ("Which bird nests by the Ashen River?", "the grey heron"),
         ("What do islanders eat at the harvest feast?", "smoked eel"), ("Animal on the flag?", "lynx")]


@pytest.fixture(scope="module")
def generator():
    model, tok = load_generator(resolve_model(DEFAULT_MODEL), dtype="float32")
    pairs = [type("P", (), {"question": q, "answer": a})() for q, a in PAIRS]
    return model, tok, qa_examples(tok, pairs, "Answer briefly.")


def test_slow_bf16_kernels_train_in_float32(generator):
    """An AVX2-only CPU ran bf16 products 70x slower than float32 (bench/README.md): never chosen there."""
    model, tok, rows = generator
    copy, p = training_copy(model, tok, rows, speeds=(1.6, 116.0))
    assert copy is None and p.dtype == torch.float32 and p.why.startswith("float32: bf16 products run 2 GFLOP/s")


def test_fast_bf16_is_taken_when_the_loss_holds(generator):
    model, tok, rows = generator
    copy, p = training_copy(model, tok, rows, speeds=(900.0, 200.0))
    assert p.dtype == torch.bfloat16 and next(copy.parameters()).dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.float32  # the answering model is untouched
    drift = float(p.why.split("within ")[1].split("%")[0]) / 100
    assert drift <= LOSS_TOLERANCE


def test_the_cpu_s_bf16_instructions_decide_so_a_loaded_machine_trains_the_same_adapter(generator):
    """A probe of 1.5x (a 2.4x CPU measured while another process ran) keeps bf16 where the CPU has the
    instructions; a CPU without them trains in float32 however its probe reads; bf16 slower than float32 is refused."""
    model, tok, rows = generator
    copy, p = training_copy(model, tok, rows, speeds=(300.0, 200.0), bf16_instructions=True)
    assert p.dtype == torch.bfloat16 and copy is not None
    copy, p = training_copy(model, tok, rows, speeds=(900.0, 200.0), bf16_instructions=False)
    assert copy is None and p.why.endswith("its flags rule bf16 training out (it pays with AVX512-BF16 and no AMX)")
    copy, p = training_copy(model, tok, rows, speeds=(180.0, 200.0), bf16_instructions=True)
    assert copy is None and p.dtype == torch.float32 and "bf16 needs to be faster" in p.why
    # Flags unknown: the probe alone, at MIN_SPEEDUP (1.5x is not enough).
    assert training_copy(model, tok, rows, speeds=(300.0, 200.0))[0] is None


def test_fast_bf16_is_refused_when_the_loss_moves(generator):
    """Zero tolerance: any rounding moves the loss, so training stays in float32."""
    model, tok, rows = generator
    copy, p = training_copy(model, tok, rows, speeds=(900.0, 200.0), tolerance=0.0)
    assert copy is None and p.dtype == torch.float32 and "moves" in p.why


def test_the_speeds_are_measured_on_this_cpu_and_decide_when_none_are_given(generator):
    """Without `speeds`, training_copy measures this CPU (once per process) and its reason quotes what it measured."""
    model, tok, rows = generator
    copy, p = training_copy(model, tok, rows)
    bf16, fp32 = matmul_speeds()  # the same measurement: cached for the process
    assert 0 < bf16 < float("inf") and 0 < fp32 < float("inf")
    if bf16 < MIN_SPEEDUP * fp32:
        assert copy is None and p.why == (f"float32: bf16 products run {bf16:.0f} GFLOP/s against {fp32:.0f} in "
                                          f"float32 on this CPU (bf16 needs {MIN_SPEEDUP:g}x)")
    else:
        assert f"bf16 products run {bf16 / fp32:.1f}x float32's on this CPU" in p.why


def test_the_training_copy_is_cast_weight_by_weight_to_the_same_numbers(generator):
    """`cast_copy` skips the float32 copy `deepcopy(model).to(bf16)` makes on the way, not a single rounding."""
    import copy as copy_mod

    from harness.arms.precision import cast_copy

    model, _, _ = generator
    ours, theirs = cast_copy(model, torch.bfloat16), copy_mod.deepcopy(model).to(torch.bfloat16)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert ours.lm_head.weight is ours.model.embed_tokens.weight  # SmolLM2's tied head stays tied
    assert next(model.parameters()).dtype == torch.float32


def test_the_bf16_copy_is_let_go_while_an_arm_answers_and_cast_again_to_train(generator, tmp_path):
    """Every arm's Shared (a `dataclasses.replace` of the run's) holds one copy; releasing it in one releases it
    in all, and the next training gets the same numbers back."""
    import dataclasses

    from harness.arms.pipeline import Shared
    from harness.arms.precision import cast_copy
    from harness.config import TaskConfig

    model, tok, _ = generator
    copy = cast_copy(model, torch.bfloat16)
    shared = Shared(model, tok, None, TaskConfig(name="t"), "m", tmp_path, train_model=copy)
    arm = dataclasses.replace(shared, config=TaskConfig(name="t", seed=1))
    assert arm.training_base is copy and shared.training_base is copy
    arm.release_training_copy()
    again = shared.training_base
    assert again is not copy and again is arm.training_base
    assert all(torch.equal(p, q) and p.dtype == torch.bfloat16 for p, q in zip(again.parameters(), copy.parameters()))
    float32 = Shared(model, tok, None, TaskConfig(name="t"), "m", tmp_path, train_model=model)
    float32.release_training_copy()
    assert float32.training_base is model


def test_forced_bf16_trains_on_a_copy_even_where_the_cpu_says_float32(generator):
    """--train-dtype bfloat16: one machine measures what an AVX512-BF16 EPYC would train (issue 41's float32 vs
    bf16 freshness comparison), whatever this CPU's flags or probe say; the faithfulness check still applies."""
    model, tok, rows = generator
    copy, p = training_copy(model, tok, rows, speeds=(1.6, 116.0), bf16_instructions=False, forced=True)
    assert copy is not None and p.dtype == torch.bfloat16 and "forced by --train-dtype" in p.why
    copy, p = training_copy(model, tok, rows, speeds=(1.6, 116.0), forced=True, tolerance=0.0)
    assert copy is None and "moves" in p.why


def test_train_dtype_is_an_option_of_run_and_train():
    from harness.cli_args import build_parser

    for command in ("run", "train"):
        args = build_parser().parse_args([command, "--task", "coffee", "--train-dtype", "bfloat16"])
        assert args.train_dtype == "bfloat16"
