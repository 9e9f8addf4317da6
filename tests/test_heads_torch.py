"""from_torch with an nn.Embedding in front and nn.Linear layers behind, against live PyTorch models."""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm

torch = pytest.importorskip("torch")

VOCAB, EMBED, HIDDEN = 12, 3, 4


class Classifier(torch.nn.Module):
    """nn.Embedding -> nn.LSTM (packed by length) -> Linear -> ReLU -> Linear -> sigmoid on h_n."""

    def __init__(self, bidirectional=False, num_layers=1, per_step=False):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(VOCAB, EMBED, padding_idx=0)
        self.lstm = torch.nn.LSTM(EMBED, HIDDEN, num_layers, batch_first=True, bidirectional=bidirectional)
        width = HIDDEN * (2 if bidirectional else 1)
        self.fc1 = torch.nn.Linear(width, 5)
        self.fc2 = torch.nn.Linear(5, 2, bias=False)
        self.per_step = per_step

    def forward(self, ids, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            self.embed(ids), lengths, batch_first=True, enforce_sorted=False
        )
        out, (h, _) = self.lstm(packed)
        if self.per_step:
            x, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        else:
            x = torch.cat([h[-2], h[-1]], -1) if self.lstm.bidirectional else h[-1]
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))


IDS = np.array([[3, 5, 7, 2, 0, 0], [4, 0, 9, 1, 1, 11], [1, 2, 0, 0, 0, 0], [6, 6, 6, 6, 6, 6]])
LENGTHS = np.array([4, 6, 2, 6])


@pytest.mark.parametrize(
    ("bidirectional", "num_layers", "per_step"), [(False, 1, False), (True, 2, False), (True, 1, True)]
)
def test_from_torch_with_embedding_and_head_matches_pytorch(bidirectional, num_layers, per_step):
    net = Classifier(bidirectional, num_layers, per_step).eval()
    with torch.no_grad():
        want = net(torch.from_numpy(IDS), torch.from_numpy(LENGTHS)).numpy()
    model = fastlstm.from_torch(
        net.state_dict(),
        prefix="lstm.",
        embedding="embed.",
        head=["fc1.", "fc2"],
        head_activations=["relu", "sigmoid"],
        return_sequences=per_step,
    )
    got, _ = model(IDS, sequence_length=LENGTHS)
    assert got.shape == want.shape
    # Per step: past each length both pad the LSTM's outputs with zeros and run the head on them.
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)
    assert isinstance(model.layers[0], fastlstm.Embedding) and model.dense_layers[1].bias is None


def test_from_torch_head_from_a_safetensors_file(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    net = Classifier().eval()
    path = tmp_path / "net.safetensors"
    safetensors.save_file(net.state_dict(), str(path))
    model = fastlstm.from_torch(
        path, prefix="lstm", embedding="embed", head=["fc1", "fc2"], return_sequences=False
    )
    direct = fastlstm.from_torch(
        net.state_dict(), prefix="lstm", embedding="embed", head=["fc1", "fc2"], return_sequences=False
    )
    np.testing.assert_array_equal(model(IDS, LENGTHS)[0], direct(IDS, LENGTHS)[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"embedding": "emb."}, ValueError, r"no emb.weight \(the weight of the nn.Embedding named 'emb.'\)"),
        ({"head": ["fc3."]}, ValueError, r"no fc3.weight"),
        ({"head": "fc1."}, TypeError, "head must be a list"),
        ({"head": ["fc1."], "head_activations": ["relu", None]}, ValueError, "2 entries but head names 1"),
        (
            {"head": ["fc2."]},
            ValueError,
            r"layers\[2\] \(Dense\) takes inputs of depth 5 but layers\[1\] outputs depth 4",
        ),
        ({"head": ["fc1."], "head_activations": ["gelu"]}, ValueError, "unknown Dense activation 'gelu'"),
    ],
)
def test_from_torch_refuses_bad_embedding_and_head(kwargs, error, message):
    options = {"prefix": "lstm.", "embedding": "embed.", **kwargs}
    with pytest.raises(error, match=message):
        fastlstm.from_torch(Classifier().state_dict(), **options)


def test_from_torch_module_with_head_is_refused():
    with pytest.raises(ValueError, match="pass model.state_dict"):
        fastlstm.from_torch(torch.nn.LSTM(3, 4), head=["fc."])
