"""fastlstm.from_torch against PyTorch's own nn.LSTM on the same inputs (torch==2.13.0, CPU)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastlstm
import fastlstm.convert.pytorch

torch = pytest.importorskip("torch")

LENGTHS = np.array([7, 1, 4, 6, 2])


def torch_run(lstm, x, lengths, batch_first):
    """PyTorch's outputs (zero-padded via pack/pad), h_n and c_n for a padded batch."""
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(lengths), batch_first=batch_first, enforce_sorted=False
    )
    with torch.no_grad():
        out, (h_n, c_n) = lstm(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(
        out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0]
    )
    return out.numpy(), h_n.numpy(), c_n.numpy()


def per_layer_states(states):
    """The model's (c, h) per torch layer and direction, in h_n's order (layer * directions + direction)."""
    flat = []
    for state in states:
        flat.extend(state if isinstance(state[0], tuple) else [state])
    return flat


def check_against_torch(lstm, dtype, tol, batch_first=True, source=None):
    lstm.eval()
    gen = np.random.default_rng(7)
    shape = (len(LENGTHS), LENGTHS.max(), lstm.input_size)
    x = gen.uniform(-1, 1, shape if batch_first else (shape[1], shape[0], shape[2])).astype(dtype)
    want, h_n, c_n = torch_run(lstm, x, LENGTHS, batch_first)
    model = fastlstm.from_torch(lstm if source is None else source)
    assert model.dtype == dtype
    outputs, states = model(x, sequence_length=LENGTHS, time_major=not batch_first)
    assert outputs.shape == want.shape
    errors = [np.abs(outputs - want).max()]
    flat = per_layer_states(states)
    assert len(flat) == h_n.shape[0]
    for k, (c, h) in enumerate(flat):
        errors += [np.abs(c - c_n[k]).max(), np.abs(h - h_n[k]).max()]
    assert max(errors) < tol
    return model


@pytest.mark.parametrize(
    "num_layers, bidirectional, proj_size, bias",
    [
        (1, False, 0, True),
        (2, False, 0, True),
        (1, True, 0, True),
        (2, True, 0, True),
        (2, True, 2, True),
        (1, False, 3, False),
        (2, False, 0, False),
    ],
)
def test_matches_pytorch(num_layers, bidirectional, proj_size, bias):
    torch.manual_seed(num_layers * 100 + 10 * bidirectional + proj_size + bias)
    lstm = torch.nn.LSTM(
        3,
        5,
        num_layers=num_layers,
        bias=bias,
        batch_first=True,
        bidirectional=bidirectional,
        proj_size=proj_size,
    )
    model = check_against_torch(lstm, np.float32, 2e-6)
    cells = [cell for layer in model.layers for cell in (layer if isinstance(layer, tuple) else (layer,))]
    assert len(model.layers) == num_layers and all(cell.forget_bias == 0.0 for cell in cells)
    assert all(isinstance(cell, fastlstm.LSTMCell) == (proj_size > 0) for cell in cells)


def test_sequence_first_float64_and_dropout():
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, dropout=0.5).double()
    check_against_torch(lstm, np.float64, 1e-12, batch_first=False)


def test_state_dict_of_tensors_or_arrays():
    torch.manual_seed(2)
    lstm = torch.nn.LSTM(3, 4, num_layers=2, proj_size=2, batch_first=True)
    check_against_torch(lstm, np.float32, 2e-6, source=lstm.state_dict())
    arrays = {key: value.numpy() for key, value in lstm.state_dict().items()}
    check_against_torch(lstm, np.float32, 2e-6, source=arrays)


def test_bias_is_summed_in_float64_then_cast():
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(2, 3, batch_first=True)
    state = lstm.state_dict()
    total = state["bias_ih_l0"].double().numpy() + state["bias_hh_l0"].double().numpy()
    cell = fastlstm.from_torch(lstm).layers[0]
    order = np.r_[0:3, 6:9, 3:6, 9:12]  # (i, f, g, o) -> (i, j=g, f, o), 3 units
    assert np.array_equal(cell.bias, total[order].astype(np.float32))
    kernel = np.concatenate([state["weight_ih_l0"].numpy().T, state["weight_hh_l0"].numpy().T])
    assert np.array_equal(cell.kernel, kernel[:, order])


def test_numpy_state_dict_without_torch(tmp_path):
    """A state dict of numpy arrays converts in a process where torch cannot be imported."""
    torch.manual_seed(4)
    lstm = torch.nn.LSTM(3, 4, bidirectional=True, batch_first=True)
    np.savez(tmp_path / "sd.npz", **{key: value.numpy() for key, value in lstm.state_dict().items()})
    x = np.random.default_rng(0).uniform(-1, 1, (2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        np.save(tmp_path / "want.npy", lstm(torch.from_numpy(x))[0].numpy())
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, fastlstm\n"
        f"d = '{tmp_path}'\n"
        "model = fastlstm.from_torch(dict(np.load(d + '/sd.npz')))\n"
        "err = np.abs(model(np.load(d + '/x.npy'))[0] - np.load(d + '/want.npy')).max()\n"
        "assert err < 2e-6, err\n"
        "try:\n    import torch\nexcept ImportError:\n    print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(5)
    model = fastlstm.from_torch(torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2))
    fastlstm.save(tmp_path / "torch.npz", model)
    restored = fastlstm.load(tmp_path / "torch.npz")
    x = np.random.default_rng(1).uniform(-1, 1, (6, 2, 3)).astype(np.float32)
    assert np.array_equal(restored(x, time_major=True)[0], model(x, time_major=True)[0])


# ----------------------------------------------------------------------------- errors


def lstm_state(**kwargs):
    torch.manual_seed(6)
    return {key: value.numpy() for key, value in torch.nn.LSTM(3, 4, **kwargs).state_dict().items()}


def test_other_recurrent_modules():
    with pytest.raises(ValueError, match=r"GRU: GRU is not supported; fastlstm converts nn.LSTM"):
        fastlstm.from_torch(torch.nn.GRU(3, 4))
    with pytest.raises(ValueError, match=r"RNN is not supported; fastlstm converts nn.LSTM modules"):
        fastlstm.from_torch(torch.nn.RNN(3, 4))
    with pytest.raises(ValueError, match=r"Linear is not supported; fastlstm converts nn.LSTM modules"):
        fastlstm.from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(TypeError, match=r"from_torch takes an nn.LSTM or its state_dict\(\), got list"):
        fastlstm.from_torch([np.zeros((16, 3))])


def test_other_recurrent_state_dicts():
    with pytest.raises(
        ValueError, match=r"weight_hh_l0 has shape \(12, 4\): 3 gate blocks, a GRU's; GRU is not"
    ):
        fastlstm.from_torch(torch.nn.GRU(3, 4).state_dict())
    with pytest.raises(ValueError, match=r"weight_hh_l0 has shape \(4, 4\): 1 gate block, a plain nn.RNN's"):
        fastlstm.from_torch(torch.nn.RNN(3, 4).state_dict())


def test_module_attributes_that_disagree_with_the_weights():
    lstm = torch.nn.LSTM(3, 4)
    lstm.input_size = 5
    with pytest.raises(ValueError, match=r"nn.LSTM has input_size=5 but its weights say input_size=3"):
        fastlstm.from_torch(lstm)


def renamed(state, old, new):
    return {(new if key == old else key): value for key, value in state.items()}


@pytest.mark.parametrize(
    "state, message",
    [
        ({}, r"the state dict is empty"),
        (
            {f"lstm.{key}": value for key, value in lstm_state().items()},
            r"state dict key 'lstm.weight_ih_l0' is not an nn.LSTM weight .* without a prefix",
        ),
        (
            {key: value for key, value in lstm_state(num_layers=2).items() if key != "bias_hh_l1"},
            r"state dict: bias_hh_l1 is missing",
        ),
        (
            {
                key: value
                for key, value in lstm_state(bidirectional=True).items()
                if not key.startswith("weight_hh_l0_r")
            },
            r"state dict: weight_hh_l0_reverse is missing",
        ),
        (renamed(lstm_state(), "weight_ih_l0", "weight_ih_l1"), r"state dict: weight_ih_l0 is missing"),
        (
            {**lstm_state(), "weight_hr_l0_reverse": np.zeros((2, 4), np.float32)},
            r"state dict: bias_hh_l0_reverse is missing",
        ),
        (
            {**lstm_state(), "weight_ih_l0": np.zeros((15, 3), np.float32)},
            r"weight_ih_l0 has shape \(15, 3\); expected \[4 \* hidden_size, input_size\]",
        ),
        (
            {**lstm_state(), "weight_hh_l0": np.zeros((16, 5), np.float32)},
            r"weight_hh_l0 has shape \(16, 5\); with weight_ih_l0 \(16, 3\) it must be \(16, 4\)",
        ),
        (
            {**lstm_state(), "bias_ih_l0": np.zeros(12, np.float32)},
            r"bias_ih_l0 has shape \(12,\); expected \(16,\)",
        ),
        (
            {**lstm_state(proj_size=2), "weight_hr_l0": np.zeros((2, 3), np.float32)},
            r"weight_hr_l0 has shape \(2, 3\); expected \[proj_size, 4\]",
        ),
        (
            {**lstm_state(), "weight_ih_l0": np.zeros((16, 3), np.int64)},
            r"weight_ih_l0 has dtype int64; LSTM weights must be floating point",
        ),
        (
            {**lstm_state(num_layers=2), "weight_ih_l1": np.zeros((16, 3), np.float32)},
            r"layers\[1\] takes inputs of depth 3 but layers\[0\] outputs depth 4",
        ),
    ],
)
def test_bad_state_dicts(state, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.from_torch(state)


# ----------------------------------------------------------------- nn.LSTMCell and prefixes


def cell_steps(cell, x, state=None):
    """nn.LSTMCell called step by step over batch-major ``x``: outputs [batch, time, hidden], (c, h)."""
    h, c = (None, None) if state is None else state
    outputs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            h, c = cell(torch.from_numpy(x[:, t]), None if h is None else (h, c))
            outputs.append(h.numpy())
    return np.stack(outputs, axis=1), (c.numpy(), h.numpy())


@pytest.mark.parametrize(
    "dtype, tol, bias", [(np.float32, 2e-6, True), (np.float64, 1e-12, True), (np.float32, 2e-6, False)]
)
def test_lstm_cell_is_the_cell_called_step_by_step(dtype, tol, bias):
    torch.manual_seed(8)
    cell = torch.nn.LSTMCell(3, 5, bias=bias).to(torch.float64 if dtype == np.float64 else torch.float32)
    x = np.random.default_rng(2).uniform(-1, 1, (5, 7, 3)).astype(dtype)
    want, (want_c, want_h) = cell_steps(cell, x)
    model = fastlstm.from_torch(cell)
    assert model.dtype == dtype and len(model.layers) == 1 and model.layers[0].forget_bias == 0.0
    outputs, ((c, h),) = model(x)
    assert max(np.abs(outputs - want).max(), np.abs(c - want_c).max(), np.abs(h - want_h).max()) < tol
    # A given initial state is the (h, c) passed to the first call.
    gen = np.random.default_rng(3)
    h0, c0 = (torch.from_numpy(gen.uniform(-1, 1, (5, 5)).astype(dtype)) for _ in range(2))
    want, (want_c, want_h) = cell_steps(cell, x, (h0, c0))
    outputs, ((c, h),) = model(x, initial_state=[(c0.numpy(), h0.numpy())])
    assert max(np.abs(outputs - want).max(), np.abs(c - want_c).max(), np.abs(h - want_h).max()) < tol


class Tagger(torch.nn.Module):
    """A model holding an LSTMCell and an LSTM among other modules, like silero-vad's."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 3, 1)
        self.lstm_cell = torch.nn.LSTMCell(3, 5)
        self.rnn = torch.nn.LSTM(3, 4, num_layers=2)
        self.norm = torch.nn.BatchNorm1d(4)  # an int64 num_batches_tracked entry as well


def test_prefix_picks_one_module_out_of_a_whole_state_dict():
    torch.manual_seed(9)
    tagger = Tagger()
    state = tagger.state_dict()
    x = np.random.default_rng(4).uniform(-1, 1, (5, 7, 3)).astype(np.float32)
    want, _ = cell_steps(tagger.lstm_cell, x)
    for prefix in ("lstm_cell.", "lstm_cell"):
        model = fastlstm.from_torch(state, prefix=prefix)
        assert np.abs(model(x)[0] - want).max() < 2e-6
    xt = x.transpose(1, 0, 2).copy()  # nn.LSTM is sequence-first by default
    with torch.no_grad():
        want_rnn = tagger.rnn(torch.from_numpy(xt))[0].numpy()
    rnn = fastlstm.from_torch(state, prefix="rnn.")
    assert len(rnn.layers) == 2 and np.abs(rnn(xt, time_major=True)[0] - want_rnn).max() < 2e-6


def test_prefix_errors_list_the_candidates():
    state = Tagger().state_dict()
    with pytest.raises(
        ValueError,
        match=r"state dict key 'conv.weight' is not an nn.LSTM weight .* with prefix= "
        r"\(candidates: 'lstm_cell.', 'rnn.'\)",
    ):
        fastlstm.from_torch(state)
    with pytest.raises(
        ValueError,
        match=r"the state dict has no nn.LSTM or nn.LSTMCell under prefix 'conv.' .*candidates: 'lstm_cell.', 'rnn.'",
    ):
        fastlstm.from_torch(state, prefix="conv.")
    with pytest.raises(ValueError, match=r"under prefix '' .*candidates: 'lstm_cell.', 'rnn.'"):
        fastlstm.from_torch(state, prefix="")
    nested = {f"enc.{key}": value for key, value in state.items() if key.startswith("lstm_cell.")}
    nested.update(
        {
            key.replace("lstm_cell.", "enc."): value
            for key, value in state.items()
            if key.startswith("lstm_cell.")
        }
    )
    with pytest.raises(
        ValueError, match=r"prefix 'enc.' is ambiguous: .*candidates: 'enc.', 'enc.lstm_cell.'"
    ):
        fastlstm.from_torch(nested, prefix="enc.")
    with pytest.raises(TypeError, match=r"prefix must be a str such as 'lstm_cell.', got int"):
        fastlstm.from_torch(state, prefix=3)


def cell_state(**kwargs):
    torch.manual_seed(10)
    return {key: value.numpy() for key, value in torch.nn.LSTMCell(3, 4, **kwargs).state_dict().items()}


@pytest.mark.parametrize(
    "state, message",
    [
        (
            {**cell_state(), "weight_ih_l0": np.zeros((16, 3), np.float32)},
            r"mixes nn.LSTMCell keys \(bias_hh\) and nn.LSTM keys \(weight_ih_l0\)",
        ),
        (
            {k: v for k, v in cell_state().items() if k != "bias_hh"},
            r"state dict: bias_hh is missing \(an nn.LSTMCell has",
        ),
        ({k: v for k, v in cell_state().items() if k != "weight_hh"}, r"state dict: weight_hh is missing"),
        (
            {**cell_state(), "weight_hh": np.zeros((16, 5), np.float32)},
            r"weight_hh has shape \(16, 5\); with weight_ih \(16, 3\) it must be \(16, 4\)",
        ),
        (
            {**cell_state(), "bias_ih": np.zeros(12, np.float32)},
            r"bias_ih has shape \(12,\); expected \(16,\)",
        ),
    ],
)
def test_bad_lstm_cell_state_dicts(state, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.from_torch(state)


def test_other_cells():
    with pytest.raises(
        ValueError, match=r"weight_hh has shape \(12, 4\): 3 gate blocks, a GRU's; .*nn.LSTMCell"
    ):
        fastlstm.from_torch(torch.nn.GRUCell(3, 4).state_dict())
    with pytest.raises(ValueError, match=r"weight_hh has shape \(4, 4\): 1 gate block, a plain nn.RNN's"):
        fastlstm.from_torch(torch.nn.RNNCell(3, 4).state_dict())
    with pytest.raises(ValueError, match=r"RNNCell is not supported; fastlstm converts nn.LSTM modules"):
        fastlstm.from_torch(torch.nn.RNNCell(3, 4))
    cell = torch.nn.LSTMCell(3, 4)
    cell.hidden_size = 6
    with pytest.raises(ValueError, match=r"nn.LSTMCell has hidden_size=6 but its weights say hidden_size=4"):
        fastlstm.from_torch(cell)


# ------------------------------------------------------------------------- weights files


def test_safetensors_file_without_torch(tmp_path):
    """A whole model's .safetensors converts in a process where torch cannot be imported."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    torch.manual_seed(11)
    tagger = Tagger()
    safetensors_numpy.save_file(
        {k: v.numpy() for k, v in tagger.state_dict().items()}, tmp_path / "model.safetensors"
    )
    x = np.random.default_rng(5).uniform(-1, 1, (2, 6, 3)).astype(np.float32)
    np.save(tmp_path / "want.npy", cell_steps(tagger.lstm_cell, x)[0])
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, fastlstm\n"
        f"d = {str(tmp_path)!r}\n"
        "model = fastlstm.from_torch(d + '/model.safetensors', prefix='lstm_cell.')\n"
        "err = np.abs(model(np.load(d + '/x.npy'))[0] - np.load(d + '/want.npy')).max()\n"
        "assert err < 2e-6, err\n"
        "try:\n    import torch\nexcept ImportError:\n    print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_safetensors_half_precision(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(12)
    lstm = torch.nn.LSTM(3, 4)
    for half in (torch.bfloat16, torch.float16):
        state = {key: value.to(half) for key, value in lstm.state_dict().items()}
        safetensors_torch.save_file(state, tmp_path / "half.safetensors")
        model = fastlstm.from_torch(tmp_path / "half.safetensors")
        assert model.dtype == np.float32
        widened = fastlstm.from_torch({key: value.float() for key, value in state.items()})
        for got, want in zip(model.layers[0].get_weights(), widened.layers[0].get_weights(), strict=True):
            assert np.array_equal(got, want)


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_save_files(tmp_path, zip_format):
    torch.manual_seed(13)
    tagger = Tagger()
    path = tmp_path / "model.pt"
    torch.save(tagger.state_dict(), path, _use_new_zipfile_serialization=zip_format)
    direct = fastlstm.from_torch(tagger.state_dict(), prefix="rnn.")
    from_file = fastlstm.from_torch(str(path), prefix="rnn.")
    for a, b in zip(direct.layers, from_file.layers, strict=True):
        for got, want in zip(a.get_weights(), b.get_weights(), strict=True):
            assert np.array_equal(got, want)


def test_bad_weights_files(tmp_path):
    from fastlstm.io import StateDictFileError

    torch.save(torch.nn.LSTM(3, 4), tmp_path / "module.pt")  # a pickled module, not a state dict
    with pytest.raises(
        StateDictFileError, match=r"module.pt: torch.load\(weights_only=True\) cannot read it"
    ):
        fastlstm.from_torch(tmp_path / "module.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(StateDictFileError, match=r"tensor.pt: holds a Tensor, not a state dict"):
        fastlstm.from_torch(tmp_path / "tensor.pt")
    torch.save({"weight_ih": [1.0], "weight_hh": torch.zeros(16, 4)}, tmp_path / "list.pt")
    with pytest.raises(StateDictFileError, match=r"list.pt: entry 'weight_ih' is a list, not a tensor"):
        fastlstm.from_torch(tmp_path / "list.pt")
    (tmp_path / "text.pt").write_text("weight_ih = 1")
    with pytest.raises(
        StateDictFileError, match=r"text.pt: neither a safetensors file nor a torch.save file"
    ):
        fastlstm.from_torch(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError, match=r"state dict file .*absent.pt does not exist"):
        fastlstm.from_torch(tmp_path / "absent.pt")
    with pytest.raises(IsADirectoryError, match=r"is a directory; pass a .safetensors, .pt or .pth file"):
        fastlstm.from_torch(tmp_path)


def test_missing_safetensors_package_is_explained(tmp_path, monkeypatch):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors_numpy.save_file(cell_state(), tmp_path / "cell.safetensors")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(
        ImportError, match=r"needs the optional dependency safetensors: pip install fastlstm\[safetensors\]"
    ):
        fastlstm.from_torch(tmp_path / "cell.safetensors")
