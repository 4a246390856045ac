"""The timing helpers behind the cost chapter: structure, consistency and bad input, on the CPU with tiny sizes."""

import json
import math
import time
from itertools import groupby

import pytest
import torch

from tools.measure_gpu_costs import main as measure_main
from utils.checks import check_count
from utils.costs import (check_device, check_float_dtype, kernel_costs, mlp_step_overhead, time_op,
                         time_ops)

TINY_WIDTHS = (6, 8, 8, 3)


def _positive_finite(value):
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_time_op_returns_the_median_seconds_per_call_and_runs_warmup_first():
    calls = []
    seconds = time_op(lambda: calls.append(1), repeats=3, warmup=2)
    assert _positive_finite(seconds)
    assert len(calls) >= 2 + 1 + 3  # warm-up, calibration, at least one call per sample
    slow = time_op(lambda: time.sleep(2e-3), repeats=3, warmup=0)
    assert 2e-3 <= slow < 0.5


def test_time_ops_interleaves_named_callables_and_keeps_their_names():
    order = []
    result = time_ops({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=2, warmup=0)
    assert list(result) == ["a", "b"] and all(_positive_finite(seconds) for seconds in result.values())
    # a's calibration, b's calibration, then two timed rounds of one sample each
    assert [name for name, _ in groupby(order)] == ["a", "b", "a", "b", "a", "b"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_costs_keys_times_and_consistent_ratios(dtype):
    result = kernel_costs(4096, dtype, "cpu", repeats=3, warmup=1)
    assert set(result) == {"n_elements", "dtype", "device", "drop_rate", "copy_s", "dropout_s", "naive_s",
                           "dropout_over_copy", "naive_over_copy", "copy_bytes_per_s"}
    assert result["n_elements"] == 4096 and result["dtype"] == str(dtype).removeprefix("torch.")
    assert result["device"] == "cpu" and result["drop_rate"] == 0.5
    for key in ("copy_s", "dropout_s", "naive_s", "dropout_over_copy", "naive_over_copy", "copy_bytes_per_s"):
        assert _positive_finite(result[key]), key
    assert result["dropout_over_copy"] == pytest.approx(result["dropout_s"] / result["copy_s"])
    assert result["naive_over_copy"] == pytest.approx(result["naive_s"] / result["copy_s"])
    itemsize = torch.empty(0, dtype=dtype).element_size()
    assert result["copy_bytes_per_s"] == pytest.approx(2 * 4096 * itemsize / result["copy_s"])
    json.dumps(result)  # plain data, ready for the measurement file


def test_mlp_step_overhead_structure_and_consistency():
    result = mlp_step_overhead(16, torch.device("cpu"), widths=TINY_WIDTHS, drop_rate=0.3, repeats=3, warmup=1)
    assert set(result) == {"batch_size", "widths", "drop_rate", "device", "step_s_without_dropout",
                           "step_s_with_dropout", "overhead"}
    assert result["batch_size"] == 16 and result["widths"] == list(TINY_WIDTHS) and result["drop_rate"] == 0.3
    assert _positive_finite(result["step_s_without_dropout"]) and _positive_finite(result["step_s_with_dropout"])
    expected = result["step_s_with_dropout"] / result["step_s_without_dropout"] - 1
    assert result["overhead"] == pytest.approx(expected) and result["overhead"] > -1
    json.dumps(result)


@pytest.mark.parametrize("call, error", [
    (lambda: kernel_costs(0, torch.float32, "cpu"), ValueError),
    (lambda: kernel_costs(2.5, torch.float32, "cpu"), TypeError),
    (lambda: kernel_costs(True, torch.float32, "cpu"), TypeError),
    (lambda: kernel_costs(8, torch.int32, "cpu"), ValueError),
    (lambda: kernel_costs(8, "float32", "cpu"), TypeError),
    (lambda: kernel_costs(8, torch.float32, "cpu", drop_rate=1.0), ValueError),
    (lambda: kernel_costs(8, torch.float32, "not-a-device"), ValueError),
    (lambda: kernel_costs(8, torch.float32, 0.5), TypeError),
    (lambda: kernel_costs(8, torch.float32, "meta"), ValueError),
    (lambda: mlp_step_overhead(0, "cpu"), ValueError),
    (lambda: mlp_step_overhead(4, "cpu", drop_rate=-0.1), ValueError),
    (lambda: mlp_step_overhead(4, "cpu", widths=(5,)), ValueError),
    (lambda: mlp_step_overhead(4, "cpu", widths=(5, 0, 2)), ValueError),
    (lambda: time_op(42), TypeError),
    (lambda: time_ops({}), TypeError),
    (lambda: time_op(lambda: None, repeats=0), ValueError),
    (lambda: time_op(lambda: None, warmup=-1), ValueError),
    (lambda: check_count(1.0, "n"), TypeError),
])
def test_bad_input_raises_a_clear_error(call, error):
    with pytest.raises(error):
        call()


def test_devices_and_dtypes_are_checked():
    assert check_device("cpu") == torch.device("cpu")
    assert check_float_dtype(torch.float16) is torch.float16
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="only"):
            check_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ValueError, match="no CUDA GPU"):
            check_device("cuda")


def test_measurement_tool_writes_json_with_provenance(tmp_path, capsys):
    out = tmp_path / "costs.json"
    assert measure_main([str(out), "--device", "cpu", "--log2-sizes", "10", "11", "--batch-sizes", "4",
                         "--widths", "6", "8", "3", "--repeats", "2"]) == 0
    data = json.loads(out.read_text())
    provenance = data["provenance"]
    assert provenance["command"].startswith("python -m tools.measure_gpu_costs ")
    assert provenance["torch_version"] == torch.__version__ and provenance["date_utc"].endswith("+00:00")
    assert [(k["n_elements"], k["dtype"]) for k in data["kernels"]] == [
        (1024, "float32"), (2048, "float32"), (1024, "bfloat16"), (2048, "bfloat16")]
    assert [m["batch_size"] for m in data["mlp_steps"]] == [4] and _positive_finite(data["tiny_copy_s"])
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind
    assert "dropout / copy" in capsys.readouterr().out
