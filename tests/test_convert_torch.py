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
    with pytest.raises(ValueError, match=r"LSTMCell is not supported; fastlstm converts nn.LSTM modules"):
        fastlstm.from_torch(torch.nn.LSTMCell(3, 4))
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
