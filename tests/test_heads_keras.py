"""from_keras with an Embedding in front and Dense layers behind: predictions of real Keras 3 and tf_keras.

The files and their expected predictions are made by tools/golden/make_heads_golden.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
from conftest import GOLDEN

pytest.importorskip("h5py")

HEADS = GOLDEN / "heads"
CASES = [
    (f"{prefix}{name}{suffix}", f"{prefix}{name}")
    for name in (
        "classifier",
        "tagger",
        "unmasked",
        "regressor",
        "functional_classifier",
        "functional_tagger",
        "functional_regressor",
    )
    for prefix, suffix in (("", ".keras"), ("legacy_", ".h5"))
] + [("functional_classifier.h5", "functional_classifier")]  # Keras 3's legacy .h5 (holds the not_equal node)


@pytest.mark.parametrize(("filename", "stem"), CASES)
def test_from_keras_file_predicts_what_keras_predicts(filename, stem):
    expected = np.load(HEADS / f"{stem}_expected.npz")
    model = fastlstm.from_keras(HEADS / filename)
    outputs, _ = model(expected["inputs"])
    assert outputs.shape == expected["outputs"].shape
    np.testing.assert_allclose(outputs, expected["outputs"], atol=2e-6, rtol=0)


def test_keras_classifier_layers_and_round_trip(tmp_path):
    model = fastlstm.from_keras(HEADS / "classifier.keras")
    emb, _, hidden, out = model.layers
    assert isinstance(emb, fastlstm.Embedding) and emb.mask_zero and emb.input_dim == 20
    assert (hidden.activation, out.activation, model.return_sequences) == ("relu", "sigmoid", False)
    fastlstm.save(tmp_path / "m.npz", model)
    ids = np.load(HEADS / "classifier_expected.npz")["inputs"]
    np.testing.assert_array_equal(fastlstm.load(tmp_path / "m.npz")(ids)[0], model(ids)[0])


def test_bad_ids_for_a_keras_model():
    model = fastlstm.from_keras(HEADS / "legacy_classifier.h5")
    with pytest.raises(ValueError, match=r"token id 20 at row 0, step 2 is outside .*\[0, 20\)"):
        model(np.array([[1, 2, 20]]))
