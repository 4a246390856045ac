"""The timing helpers behind the cost chapter: structure, consistency and bad input, on the CPU with tiny sizes."""

import json
import math
import statistics
import time
from itertools import groupby

import pytest
import torch

from tools.measure_gpu_costs import main as measure_main
from utils.chapters.costs import (
    bytes_floor_ratio,
    check_float_dtype,
    keras_step_overhead,
    kernel_costs,
    mlp_step_overhead,
    numpy_kernel_costs,
    percent_range,
    plot_time_ratios,
    rounds_below,
    saved_bytes_per_element,
    signed_percent,
    step_dropout_costs,
    step_table,
    time_op,
    time_ops,
    time_samples,
)
from utils.chapters.costs_records import H100_COSTS, load_costs
from utils.checks import check_count
from utils.devices import check_device
from utils.fast_dropout import default_workers
from utils.torch_dropout import dropout as book_dropout

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


def test_time_samples_returns_every_sample_in_round_order():
    samples = time_samples({"a": lambda: None, "b": lambda: None}, repeats=3, warmup=0)
    assert set(samples) == {"a", "b"} and all(len(v) == 3 and min(v) > 0 for v in samples.values())


def test_time_ops_interleaves_named_callables_and_keeps_their_names():
    order = []
    result = time_ops({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=2, warmup=0)
    assert list(result) == ["a", "b"] and all(_positive_finite(seconds) for seconds in result.values())
    # a's calibration, b's calibration, then two timed rounds of one sample each, the second in reverse order
    assert [name for name, _ in groupby(order)] == ["a", "b", "a", "b", "a"]


def test_time_samples_alternates_the_order_of_the_rounds_and_settles_before_each_sample():
    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in "abc"}
    time_samples(fns, repeats=4, warmup=0, settle=1)
    timed = [name for name, _ in groupby(order)][3:]  # after the three calibrations
    # every sample follows one untimed call of its own, which groupby merges with it
    assert timed == ["a", "b", "c", "b", "a", "b", "c", "b", "a"]
    with pytest.raises(ValueError):
        time_samples(fns, repeats=1, settle=-1)


def test_signed_percent_and_percent_range_never_write_minus_zero():
    assert signed_percent(0.25) == "+25 %" and signed_percent(-0.59) == "\u221259 %"
    assert signed_percent(-0.004) == "0 %" and signed_percent(0.0004, 1) == "0.0 %"
    assert signed_percent(0.0012, 1) == "+0.1 %"
    assert percent_range([0.3, -0.8, -0.02]) == "\u221280 to +30 %"


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
                           "step_s_with_dropout", "overhead", "overhead_samples", "added_s_samples"}
    assert result["batch_size"] == 16 and result["widths"] == list(TINY_WIDTHS) and result["drop_rate"] == 0.3
    assert _positive_finite(result["step_s_without_dropout"]) and _positive_finite(result["step_s_with_dropout"])
    assert result["overhead"] > -1 and all(ratio > -1 for ratio in result["overhead_samples"])
    assert len(result["overhead_samples"]) == len(result["added_s_samples"]) == 3
    assert result["overhead"] == pytest.approx(statistics.median(result["overhead_samples"]))
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
    (lambda: numpy_kernel_costs(0), ValueError),
    (lambda: numpy_kernel_costs(8, drop_rate=1.0), ValueError),
    (lambda: numpy_kernel_costs(8, seed=-1), ValueError),
    (lambda: keras_step_overhead(0), ValueError),
    (lambda: keras_step_overhead(4, widths=(5,)), ValueError),
    (lambda: keras_step_overhead(4, drop_rate=1.5), ValueError),
    (lambda: saved_bytes_per_element(torch.relu, torch.ones(3, dtype=torch.int64)), TypeError),
    (lambda: saved_bytes_per_element(torch.relu, torch.ones(0)), TypeError),
    (lambda: saved_bytes_per_element(torch.relu, [1.0]), TypeError),
    (lambda: bytes_floor_ratio(0), ValueError),
    (lambda: bytes_floor_ratio(4, -1), ValueError),
    (lambda: bytes_floor_ratio("4"), TypeError),
    (lambda: bytes_floor_ratio(4, True), TypeError),
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


def test_numpy_kernel_costs_keys_times_and_consistent_ratios():
    result = numpy_kernel_costs(3000, drop_rate=0.3, repeats=2, warmup=0)
    names = ("fresh_copy", "naive", "fast", "torch", "random_words", "random_bytes", "multiply", "torch_bernoulli")
    assert set(result) == {"n_elements", "dtype", "device", "drop_rate", "fast_threads", "torch_threads",
                           "copy_s", "copy_bytes_per_s", "random_bytes_per_s",
                           *(f"{name}_s" for name in names), *(f"{name}_over_copy" for name in names),
                           *(f"{name}_over_copy_{end}" for name in names for end in ("min", "max", "rounds"))}
    assert result["n_elements"] == 3000 and result["drop_rate"] == 0.3 and result["dtype"] == "float32"
    assert result["fast_threads"] == default_workers() and result["torch_threads"] == torch.get_num_threads()
    for name in names:
        assert _positive_finite(result[f"{name}_s"])
        assert result[f"{name}_over_copy"] == pytest.approx(result[f"{name}_s"] / result["copy_s"])
        assert 0 < result[f"{name}_over_copy_min"] <= result[f"{name}_over_copy_max"]
        rounds = result[f"{name}_over_copy_rounds"]
        assert len(rounds) == 2 and (min(rounds), max(rounds)) == (
            result[f"{name}_over_copy_min"], result[f"{name}_over_copy_max"])
    assert result["copy_bytes_per_s"] == pytest.approx(2 * 4 * 3000 / result["copy_s"])
    assert result["random_bytes_per_s"] == pytest.approx(4 * 3000 / result["random_words_s"])
    json.dumps(result)


def test_keras_step_overhead_structure_and_consistency():
    result = keras_step_overhead(8, widths=TINY_WIDTHS, drop_rate=0.3, repeats=2, warmup=1)
    assert set(result) == {"framework", "batch_size", "widths", "drop_rate", "device", "step_s_without_dropout",
                           "step_s_with_dropout", "overhead", "overhead_samples", "added_s_samples"}
    assert result["framework"] == "keras" and result["batch_size"] == 8 and result["widths"] == list(TINY_WIDTHS)
    assert _positive_finite(result["step_s_without_dropout"]) and _positive_finite(result["step_s_with_dropout"])
    assert len(result["overhead_samples"]) == len(result["added_s_samples"]) == 2
    assert result["overhead"] == pytest.approx(statistics.median(result["overhead_samples"]))
    json.dumps(result)


def test_step_dropout_costs_times_both_frameworks_on_the_steps_activations():
    result = step_dropout_costs(8, widths=TINY_WIDTHS, drop_rate=0.3, repeats=2, warmup=1)
    assert set(result) == {"batch_size", "widths", "drop_rate", "device", "n_dropped", "torch_s", "keras_s",
                           "torch_s_samples", "keras_s_samples"}
    assert result["n_dropped"] == 8 * (8 + 8) and result["widths"] == list(TINY_WIDTHS)
    assert len(result["torch_s_samples"]) == len(result["keras_s_samples"]) == 2
    assert result["torch_s"] == statistics.median(result["torch_s_samples"])
    assert _positive_finite(result["torch_s"]) and _positive_finite(result["keras_s"])
    json.dumps(result)
    with pytest.raises(ValueError):
        step_dropout_costs(8, widths=(6,))


def test_saved_bytes_per_element_of_the_dropout_variants():
    x = torch.randn(64, 32)

    def f_dropout(t):
        return torch.nn.functional.dropout(t, 0.5, training=True)

    assert saved_bytes_per_element(f_dropout, x) == 4  # CPU F.dropout keeps a float mask
    assert saved_bytes_per_element(f_dropout, x.bfloat16()) == 2
    assert saved_bytes_per_element(lambda t: t * (torch.rand_like(t) >= 0.5) / 0.5, x) == 1  # a bool mask
    assert saved_bytes_per_element(lambda t: book_dropout(t, 0.5, training=True), x) == 1
    assert saved_bytes_per_element(lambda t: torch.native_dropout(t, 0.5, True)[0], x) == 1
    assert saved_bytes_per_element(lambda t: t * 2.0, x) == 0  # a scalar multiply keeps nothing
    assert saved_bytes_per_element(torch.exp, x) == 4  # exp keeps its output


def test_bytes_floor_ratio():
    assert bytes_floor_ratio(4) == 9 / 8 and bytes_floor_ratio(2) == 5 / 4
    assert bytes_floor_ratio(4, 0) == 1 and bytes_floor_ratio(2, 1 / 8) == pytest.approx(1 + 1 / 32)


def test_load_costs_reads_the_committed_file_and_rejects_bad_ones(tmp_path):
    data = load_costs(H100_COSTS)
    assert data["provenance"]["device"] == "cuda" and data["kernels"] and data["mlp_steps"]
    with pytest.raises(FileNotFoundError, match="measure_gpu_costs"):
        load_costs(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_costs(bad)
    bad.write_text("[]")
    with pytest.raises(ValueError, match="JSON object"):
        load_costs(bad)
    bad.write_text(json.dumps({**data, "kernels": [{"n_elements": 4}]}))
    with pytest.raises(ValueError, match="kernel row lacks"):
        load_costs(bad)
    bad.write_text(json.dumps({key: value for key, value in data.items() if key != "provenance"}))
    with pytest.raises(ValueError, match="provenance"):
        load_costs(bad)


def test_plot_time_ratios_draws_one_line_per_curve_plus_the_copy_and_floors():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    plot_time_ratios(ax, [2**10, 2**12], {"a": [2.0, 3.0], "b": [1.5, 1.2]}, floors={"floor": 1.125}, title="t")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["copy", "a", "b", "floor"] and ax.get_xscale() == "log" and ax.get_title() == "t"
    with pytest.raises(ValueError, match="2 sizes"):
        plot_time_ratios(ax, [1, 2], {"a": [1.0]})
    with pytest.raises(ValueError, match="empty"):
        plot_time_ratios(ax, [1, 2], {})
    with pytest.raises(ValueError, match="positive"):
        plot_time_ratios(ax, [0, 2], {"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="not plotted"):
        plot_time_ratios(ax, [1, 2], {"a": [1.0, 2.0]}, styles={"b": {"color": "red"}})
    fig2, ax2 = plt.subplots()
    plot_time_ratios(ax2, [1, 2], {"a": [1.0, 2.0]}, styles={"a": {"color": "#123456", "linestyle": "--"}})
    line = ax2.get_lines()[1]
    assert line.get_color() == "#123456" and line.get_linestyle() == "--" and line.get_marker() == "o"
    plt.close(fig2)
    plt.close(fig)


def test_rounds_below_counts_the_paired_rounds_in_which_the_first_was_faster():
    assert rounds_below([1.0, 3.0, 2.0], [2.0, 2.0, 2.0]) == (1, 3)  # ties do not count
    assert rounds_below((0.5, 0.5), [1.0, 1.0]) == (2, 2)
    with pytest.raises(ValueError, match="equally long"):
        rounds_below([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-empty"):
        rounds_below([], [])


def test_step_table_shows_medians_the_share_added_and_the_rounds():
    live = {"device": "cpu", "framework": "PyTorch", "batch_size": 64, "step_s_without_dropout": 0.004,
            "step_s_with_dropout": 0.005, "overhead": 0.2, "overhead_samples": [-0.05, 0.2, 0.4]}
    stored = {"device": "cuda", "framework": "PyTorch", "batch_size": 128, "step_s_without_dropout": 0.001,
              "step_s_with_dropout": 0.0012, "overhead": 0.2}
    table = step_table([live, stored], gpu_name="H100")
    assert list(step_table([stored]).index) == ["GPU, PyTorch, 128"]
    assert list(table.index) == ["CPU, PyTorch, 64", "H100, PyTorch, 128"]
    assert table.loc["CPU, PyTorch, 64", ("median (ms)", "with")] == 5.0
    assert table.loc["CPU, PyTorch, 64", ("added, per-round ratio", "range")] == "\u22125 to +40 %"
    assert table.loc["H100, PyTorch, 128", ("added, per-round ratio", "median")] == "+20 %"
    assert table.loc["H100, PyTorch, 128", ("added, per-round ratio", "range")] == "not stored"
    assert max(map(len, repr(table).splitlines())) <= 80  # no wrapping at pandas' default width
