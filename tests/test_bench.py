"""The comparison harness's logic (fastlstm.bench): problems, FLOP count, recipes, cross-check.

Nothing here asserts a speed: the timing code runs with tiny budgets and fake
contenders, and only its bookkeeping is checked.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastlstm.bench import cli, contenders, problems, report, timing


@pytest.mark.parametrize("mode", problems.LENGTH_MODES)
def test_problem_shapes_and_lengths(mode):
    p = problems.make_problem(7, 20, 3, 5, mode)
    assert p.inputs.shape == (7, 20, 3) and p.inputs.dtype == np.float32
    assert p.kernel.shape == (8, 20) and p.kernel.dtype == np.float32
    assert p.bias.shape == (20,) and p.bias.dtype == np.float32
    assert p.lengths.shape == (7,) and p.lengths.dtype == np.int32
    assert p.lengths[0] == 20
    assert p.lengths.min() >= 1 and p.lengths.max() <= 20
    assert p.shape == (7, 20, 3, 5)
    assert p.label == f"7,20,3,5/{mode}"
    assert p.all_full == (mode == "full")
    if mode == "full":
        assert np.all(p.lengths == 20)
    else:
        assert p.lengths.min() >= 2  # the default shortest length: max(1, 20 // 10)
    limit = np.sqrt(6.0 / (8 + 20))  # Glorot uniform, as TF's default
    assert np.abs(p.kernel).max() <= limit and np.abs(p.bias).max() <= 0.1


def test_problem_is_deterministic_and_seeded():
    a = problems.make_problem(4, 6, 3, 2, "uniform", seed=5)
    b = problems.make_problem(4, 6, 3, 2, "uniform", seed=5)
    c = problems.make_problem(4, 6, 3, 2, "uniform", seed=6)
    for name in ("inputs", "kernel", "bias", "lengths"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.inputs, c.inputs)


def test_uniform_lengths_low():
    lengths = problems.make_lengths(400, 50, "uniform", low=1)
    assert lengths.min() == 1 and lengths.max() == 50


def test_unknown_lengths_mode():
    with pytest.raises(ValueError, match="'sorted'"):
        problems.make_lengths(3, 4, "sorted")


def _counted_flops(p: problems.Problem) -> int:
    """Multiplies and adds of the per-step [x, h] @ kernel products, counted one by one."""
    count = 0
    for b in range(p.batch):
        for _ in range(int(p.lengths[b])):
            xh = np.ones(p.input_size + p.num_units)
            for col in range(p.kernel.shape[1]):
                acc = 0.0
                for row in range(xh.shape[0]):
                    acc += xh[row] * p.kernel[row, col]
                    count += 2
    return count


def test_lstm_flops_against_a_count():
    p = problems.make_problem(3, 4, 2, 3, "uniform", low=1)
    assert p.flops == problems.lstm_flops(2, 3, p.sum_lengths) == _counted_flops(p)


def _check_recipes(contender, p, tol):
    recipes = contender.recipes(p)
    ref_out, ref_h = timing.reference_outputs(p)
    for name, run in recipes.items():
        out, h = run()
        assert out.dtype == np.float32 and h.dtype == np.float32, name
        np.testing.assert_allclose(out, ref_out, atol=tol, err_msg=name)
        np.testing.assert_allclose(h, ref_h, atol=tol, err_msg=name)
    return recipes


@pytest.mark.parametrize("mode", ["uniform", "full"])
def test_fastlstm_and_numpy_recipes(mode):
    p = problems.make_problem(5, 7, 3, 4, mode)
    assert set(_check_recipes(contenders.FastLSTM(), p, 1e-5)) == {"dynamic_rnn"}
    assert set(_check_recipes(contenders.NumpyReference(), p, 1e-5)) == {"reference"}


@pytest.mark.parametrize("mode", ["uniform", "full"])
def test_fastlstm_bfloat16_recipe(mode):
    p = problems.make_problem(5, 7, 3, 4, mode)
    bf16 = contenders.FastLSTMBFloat16()
    assert (bf16.name, bf16.precision, bf16.role) == ("fastlstm-bf16", "bfloat16", "ours")
    recipes = _check_recipes(bf16, p, cli.DEFAULT_TOLERANCES["bfloat16"])
    assert set(recipes) == {"dynamic_rnn"}
    out, h = recipes["dynamic_rnn"]()
    exact, exact_h = contenders.FastLSTM().recipes(p)["dynamic_rnn"]()
    assert np.abs(out - exact).max() > 1e-5  # bfloat16 products, not float32 ones
    assert np.all(out[p.lengths[:, None] <= np.arange(p.max_time)] == 0)  # zero past each length
    assert timing.max_abs_error(out, h, *timing.reference_outputs(p)) > timing.max_abs_error(
        exact, exact_h, *timing.reference_outputs(p)
    )


def test_fastlstm_bfloat16_runs_by_default():
    assert "fastlstm-bf16" in cli.build_parser().parse_args([]).contenders.split(",")
    assert contenders.CONTENDERS["fastlstm-bf16"] is contenders.FastLSTMBFloat16


@pytest.mark.parametrize("mode", ["uniform", "full"])
def test_torch_recipes(mode):
    pytest.importorskip("torch")
    p = problems.make_problem(5, 7, 3, 4, mode)
    expected = {"packed", "padded"} | ({"full"} if mode == "full" else set())
    assert set(_check_recipes(contenders.Torch(), p, 1e-5)) == expected
    assert set(_check_recipes(contenders.TorchBFloat16(), p, 3e-2)) == expected


def test_torch_bfloat16_module_is_bfloat16():
    torch = pytest.importorskip("torch")
    module = contenders.TorchBFloat16().module(problems.make_problem(2, 3, 3, 4))
    assert {w.dtype for w in module.parameters()} == {torch.bfloat16}


def test_onnxruntime_recipe():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    p = problems.make_problem(5, 7, 3, 4, "uniform")
    assert set(_check_recipes(contenders.OnnxRuntime(), p, 1e-5)) == {"lstm_node"}


def test_gate_order():
    h = 2
    kernel = np.arange(3 * 4 * h, dtype=np.float32).reshape(3, 4 * h)
    bias = np.arange(4 * h, dtype=np.float32)
    k, b = contenders.tf_to_gate_order(kernel, bias, "ifjo", forget_bias=1.0)
    # TF blocks i=0, j=1, f=2, o=3 become i, f, j, o; the forget bias lands on f
    np.testing.assert_array_equal(k[:, 2:4], kernel[:, 4:6])
    np.testing.assert_array_equal(b, [0, 1, 5, 6, 2, 3, 6, 7])


class _Fake(contenders.Contender):
    """A contender whose recipes are the reference itself, a wrong answer and a failure."""

    name = "fake"
    library = "fake"

    def recipes(self, p):
        ref = timing.reference_outputs(p)
        good = ref[0].astype(np.float32), ref[1].astype(np.float32)

        def broken():
            raise RuntimeError("no kernel")

        return {"good": lambda: good, "wrong": lambda: (good[0] + 1, good[1]), "broken": broken}


def test_run_side_by_side_checks_before_timing():
    p = problems.make_problem(3, 4, 2, 3)
    entries = timing.run_side_by_side(
        p, [_Fake()], {"float32": 1e-4}, rounds=3, min_time=0.0, sleep=0.0, log=lambda *a: None
    )
    by = {e.recipe: e for e in entries}
    assert by["good"].status == "ok" and len(by["good"].times_s) == 3 and by["good"].max_abs_err < 1e-6
    assert by["wrong"].status == "wrong" and by["wrong"].times_s == [] and by["wrong"].median_s is None
    assert by["broken"].status == "error" and "no kernel" in by["broken"].note


def test_cross_check_flags_more_than_twenty_percent():
    side = {
        ("w/full", "a", "r"): 1.19,
        ("w/full", "b", "r"): 1.25,
        ("w/full", "c", "r"): 0.80,
        ("w/full", "d", "r"): 0.85,
        ("w/full", "e", "r"): 2.0,
        ("w/full", "f", "r"): None,
    }
    alone = {key: 1.0 for key in side if key[1] != "e"}
    rows = {row["key"][1]: row for row in timing.cross_check(side, alone)}
    assert rows["a"]["suspect"] is False
    assert rows["b"]["suspect"] is True
    assert rows["c"]["suspect"] is True  # 1.0 / 0.80 = 1.25: faster side by side is just as suspect
    assert rows["d"]["suspect"] is False
    assert rows["e"]["suspect"] is None and rows["e"]["ratio"] is None  # not timed alone
    assert "f" not in rows  # not timed side by side
    assert rows["b"]["ratio"] == pytest.approx(1.25)


def test_summarize_picks_fastest_recipe_and_compares_with_peers():
    p = problems.make_problem(2, 4, 3, 5, "full", name="w")
    entries = [
        timing.Entry("fastlstm", "dynamic_rnn", times_s=[1.0, 3.0, 2.0]),
        timing.Entry("torch", "packed", times_s=[8.0]),
        timing.Entry("torch", "padded", times_s=[4.0]),
        timing.Entry("torch", "full", status="wrong"),
        timing.Entry("torch-bf16", "full", times_s=[1.0]),
        timing.Entry("numpy-ref", "reference", times_s=[0.5]),
    ]
    kinds = {
        "fastlstm": ("float32", "ours"),
        "torch": ("float32", "peer"),
        "torch-bf16": ("bfloat16", "peer"),
        "numpy-ref": ("float32", "baseline"),
    }
    checks = timing.cross_check({("w/full", "torch", "padded"): 4.0}, {("w/full", "torch", "padded"): 2.0})
    s = report.summarize(p, entries, kinds, sgemm_gflops=p.flops / 2.0 / 1e9, checks=checks)
    assert s["contenders"]["fastlstm"]["median_s"] == 2.0
    assert s["contenders"]["torch"]["recipe"] == "padded"
    assert s["contenders"]["torch"]["suspect"] is True
    assert s["contenders"]["fastlstm"]["sgemm_frac"] == pytest.approx(1.0)
    assert s["contenders"]["torch"]["sgemm_frac"] == pytest.approx(0.5)
    assert list(s["speedups"]) == ["fastlstm"]  # the baseline is not ranked
    assert s["speedups"]["fastlstm"]["float32"] == {"peer": "torch", "recipe": "padded", "ratio": 2.0}
    assert s["speedups"]["fastlstm"]["bfloat16"]["ratio"] == 0.5
    text = report.format_table([s], {"n": 2048, "gflops": 1.0})
    assert "SUSPECT" in text and "w/full torch/padded (2.00x)" in text
    table = report.format_markdown([s], None)
    assert "| w (2, 4, 3, 5) | full |" in table and "padded †" in table and "2.00x" in table


def _bf16_summary(mode="full", bf16_ok=True):
    """A summary with both fastlstm modes and both torch precisions, of known figures."""
    p = problems.make_problem(2, 4, 3, 5, mode, name="w")
    bf16 = {"max_abs_err": 2.94e-3, "times_s": [1.0, 1.0, 5.0]} if bf16_ok else {"status": "wrong"}
    entries = [
        timing.Entry("fastlstm", "dynamic_rnn", max_abs_err=3e-7, times_s=[2.0]),
        timing.Entry("fastlstm-bf16", "dynamic_rnn", **bf16),
        timing.Entry("torch", "full", max_abs_err=4e-7, times_s=[3.0]),
        timing.Entry("torch-bf16", "packed", max_abs_err=5e-3, times_s=[4.0]),
        timing.Entry("torch-bf16", "full", max_abs_err=4.4e-3, times_s=[1.6]),
        timing.Entry("torch-bf16", "padded", status="wrong", max_abs_err=0.5),
    ]
    kinds = {
        "fastlstm": ("float32", "ours"),
        "fastlstm-bf16": ("bfloat16", "ours"),
        "torch": ("float32", "peer"),
        "torch-bf16": ("bfloat16", "peer"),
    }
    sgemm = p.flops / 4.0 / 1e9  # fastlstm-bf16's 1 s is 4x sgemm: twice the bfloat16 peak
    key = (p.label, "fastlstm-bf16", "dynamic_rnn")
    return report.summarize(p, entries, kinds, sgemm, timing.cross_check({key: 1.0}, {key: 1.5}))


def test_summarize_reports_the_bfloat16_mode_against_its_peak_and_peer():
    s = _bf16_summary()
    ours = s["contenders"]["fastlstm-bf16"]
    assert ours["median_s"] == 1.0 and ours["role"] == "ours" and ours["suspect"] is True
    assert ours["sgemm_frac"] == pytest.approx(4.0)
    assert ours["peak_frac"] == pytest.approx(2.0)  # the bfloat16 peak is twice the sgemm figure
    assert s["contenders"]["fastlstm"]["peak_frac"] == pytest.approx(2.0)  # float32: the sgemm figure
    assert ours["max_abs_err"] == 2.94e-3
    assert s["contenders"]["torch-bf16"]["recipe"] == "full"
    assert s["contenders"]["torch-bf16"]["max_abs_err"] == 4.4e-3  # the fastest recipe's
    assert s["speedups"]["fastlstm-bf16"]["bfloat16"] == {
        "peer": "torch-bf16",
        "recipe": "full",
        "ratio": 1.6,
    }
    assert s["speedups"]["fastlstm-bf16"]["float32"]["ratio"] == 3.0


def test_text_report_has_the_bfloat16_line():
    text = report.format_table([_bf16_summary()], {"n": 2048, "gflops": 1.0})
    line = next(line.strip() for line in text.splitlines() if line.strip().startswith("fastlstm-bf16:"))
    assert line == (
        "fastlstm-bf16: 200% of the bfloat16 peak; vs fastest float32 peer (torch/full) 3.00x; "
        "vs fastest bfloat16 peer (torch-bf16/full) 1.60x; max|err| 2.9e-3 (torch-bf16/full: 4.4e-3)"
    )
    assert "bfloat16 peak = 2 x sgemm (2.0 GFLOP/s)" in text


def test_markdown_has_a_bfloat16_table():
    s = _bf16_summary()
    main_table, bf16_table = report.format_markdown([s], None).split("\n\n")
    assert "fastlstm bf16" not in main_table  # the float32 table is unchanged by the bfloat16 mode
    assert main_table.splitlines()[0].endswith(
        "| fastlstm vs fastest float32 peer | fastlstm vs fastest bfloat16 peer |"
    )
    head, rule, row = bf16_table.splitlines()
    assert head == (
        "| workload (B, T, D, H) | lengths | fastlstm bf16 | PyTorch bf16 | fastlstm bf16 vs fastest "
        "bfloat16 peer | fastlstm bf16 max abs error | PyTorch bf16 max abs error |"
    )
    assert rule == "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    gflops = s["flops"] / 1e9
    assert row == (
        f"| w (2, 4, 3, 5) | full | {gflops:.0f} (200%) † | {gflops / 1.6:.0f} (125%) full | 1.60x "
        "| 2.9e-3 | 4.4e-3 |"
    )


def test_markdown_bfloat16_row_without_a_correct_recipe():
    table = report.format_markdown([_bf16_summary(), _bf16_summary("uniform", bf16_ok=False)], None)
    row = table.split("\n\n")[1].splitlines()[-1]
    assert row.startswith("| w (2, 4, 3, 5) | uniform | - | ") and row.endswith(" | - | - | 4.4e-3 |"), row


def test_time_alone_in_a_subprocess():
    p = problems.make_problem(3, 4, 2, 3, "full", name="tiny")
    medians = timing.time_alone(
        "numpy-ref", [p], 1, {"float32": 1e-4}, rounds=2, min_time=0.0, seed=problems.DEFAULT_SEED
    )
    assert set(medians) == {("tiny/full", "numpy-ref", "reference")}
    assert medians["tiny/full", "numpy-ref", "reference"] > 0


def test_cli_arguments(capsys):
    assert cli.main(["--list"]) == 0
    assert "wide_batch" in capsys.readouterr().out
    assert cli.build_parser().parse_args([]).lengths == ["uniform", "full"]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--lengths", "uniform,sorted"])
    assert cli.main(["--workloads", "huge", "--no-sgemm"]) == 2


def test_command_line_reports_the_bfloat16_mode_and_cross_checks_it(tmp_path):
    """End to end on a tiny problem: both length modes, sgemm, each contender also timed alone."""
    pytest.importorskip("torch")
    json_path, md_path = tmp_path / "out.json", tmp_path / "table.md"
    argv = ["--shape", "3,4,2,3", "--contenders", "fastlstm-bf16,torch-bf16", "--rounds", "1"]
    argv += ["--min-time", "0", "--sleep", "0", "--alone-rounds", "1"]
    assert cli.main([*argv, "--json", str(json_path), "--markdown", str(md_path)]) == 0
    doc = json.loads(json_path.read_text())
    peak = doc["sgemm"]["peak_gflops"]["bfloat16"]
    assert peak == pytest.approx(2 * doc["sgemm"]["gflops"])
    assert [s["lengths"] for s in doc["workloads"]] == ["uniform", "full"]
    for s in doc["workloads"]:
        ours = s["contenders"]["fastlstm-bf16"]
        assert ours["peak_frac"] == pytest.approx(ours["gflops"] / peak)
        assert 1e-5 < ours["max_abs_err"] <= cli.DEFAULT_TOLERANCES["bfloat16"]
        assert s["speedups"]["fastlstm-bf16"]["bfloat16"]["peer"] == "torch-bf16"
        # the cross-check timed the fastlstm-bf16 recipe alone in a fresh process
        (entry,) = [e for e in s["entries"] if e["contender"] == "fastlstm-bf16"]
        assert entry["alone_s"] > 0 and entry["suspect"] in (True, False)
    bf16_rows = md_path.read_text().split("\n\n")[1].splitlines()[2:]
    assert [row.split(" | ")[1] for row in bf16_rows] == ["uniform", "full"]
