"""Golden predictions of Keras models with an Embedding in front and Dense layers behind, made by REAL Keras.

Writes into tests/golden/heads/ (relative to the repo root), for Keras 3 (``<name>.keras``)
and tf_keras (Keras 2, ``legacy_<name>.h5``, ``model.save(..., save_format="h5")``):

  classifier   Input((T,), int32) -> Embedding(20, 4, mask_zero=True) -> Dropout
               -> LSTM(5) -> Dense(3, relu) -> Dense(1, sigmoid)
  tagger       Input((T,), int32) -> Embedding(20, 4, mask_zero=True)
               -> Bidirectional(LSTM(3, return_sequences=True)) -> LSTM(4, return_sequences=True)
               -> TimeDistributed(Dense(2, softmax)) -> Dense(2)
  unmasked     Input((T,), int32) -> Embedding(20, 4) -> LSTM(5) -> Dense(1, sigmoid)
  regressor    Input((T, 3)) -> LSTM(4, return_sequences=True) -> Dense(1)

and the same classifier, tagger and regressor built with the Functional API
(``functional_<name>``; Keras 3 also writes ``functional_classifier.h5``, its legacy
``.h5``, whose config holds the ``not_equal`` mask node). ``functional_shared.keras`` /
``legacy_functional_shared.h5`` are a Functional model fastlstm must refuse, a chain
that calls one Dense layer twice: Embedding -> LSTM(4, return_sequences=True) ->
Dense(4) "shared" -> LSTM(4) -> the same Dense (Keras drops layers whose outputs go
unused, so a file cannot hold a dangling branch).

``<name>_expected.npz`` holds ``inputs`` (token ids with Keras' pre-padding, post-padding,
zeros inside a sequence and an all-padding row; float vectors for the regressor) and
``outputs`` (``model.predict``), for each Keras. All weights are set from numpy with fixed
seeds, the same for both Kerases.

TensorFlow / Keras are NOT dependencies of fastlstm; developers only:

    python -m venv /tmp/heads/tf
    /tmp/heads/tf/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 h5py
    /tmp/heads/tf/bin/python tools/golden/make_heads_golden.py

Run it WITHOUT TF_USE_LEGACY_KERAS: the Keras 3 part runs in this process, then the
script re-runs itself with TF_USE_LEGACY_KERAS=1 --legacy for the tf_keras part.
"""

import os
import subprocess
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
LEGACY = "--legacy" in sys.argv
if LEGACY != (os.environ.get("TF_USE_LEGACY_KERAS") == "1"):
    sys.exit("run without TF_USE_LEGACY_KERAS (the script sets it for its --legacy part)")

import numpy as np

if LEGACY:
    import tf_keras as keras
else:
    import keras

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "heads")
T, VOCAB = 6, 20
IDS = np.array(
    [
        [0, 0, 3, 5, 7, 2],
        [3, 5, 7, 2, 0, 0],
        [4, 0, 9, 0, 0, 11],
        [0, 0, 0, 0, 0, 0],
        [1, 2, 3, 4, 19, 6],
    ],
    dtype=np.int32,
)
L = keras.layers


def models():
    return {
        "classifier": [
            keras.Input((T,), dtype="int32"),
            L.Embedding(VOCAB, 4, mask_zero=True),
            L.Dropout(0.2),
            L.LSTM(5),
            L.Dense(3, activation="relu"),
            L.Dense(1, activation="sigmoid"),
        ],
        "tagger": [
            keras.Input((T,), dtype="int32"),
            L.Embedding(VOCAB, 4, mask_zero=True),
            L.Bidirectional(L.LSTM(3, return_sequences=True)),
            L.LSTM(4, return_sequences=True),
            L.TimeDistributed(L.Dense(2, activation="softmax")),
            L.Dense(2),
        ],
        "unmasked": [
            keras.Input((T,), dtype="int32"),
            L.Embedding(VOCAB, 4),
            L.LSTM(5),
            L.Dense(1, activation="sigmoid"),
        ],
        "regressor": [keras.Input((T, 3)), L.LSTM(4, return_sequences=True), L.Dense(1)],
    }


def functional(layers):
    """The Functional model that calls ``layers[1:]`` one after the other on ``layers[0]``."""
    tensor = layers[0]
    for layer in layers[1:]:
        tensor = layer(tensor)
    return keras.Model(layers[0], tensor)


def shared_layer_model():
    """A chain that calls one Dense layer twice (not a plain chain: each layer must be called once)."""
    ids = keras.Input((T,), dtype="int32")
    shared = L.Dense(4, name="shared")
    vectors = shared(L.LSTM(4, return_sequences=True)(L.Embedding(VOCAB, 4)(ids)))
    return keras.Model(ids, shared(L.LSTM(4)(vectors)))


def built_models():
    """(name, model) of every golden model: Sequential and Functional, each with Keras' first layer names."""
    for name in models():
        keras.backend.clear_session()
        yield name, keras.Sequential(models()[name])
    for name in ("classifier", "tagger", "regressor"):
        keras.backend.clear_session()
        yield f"functional_{name}", functional(models()[name])


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, model in built_models():
        rng = np.random.default_rng(zlib.crc32(name.removeprefix("functional_").encode()))
        model.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in model.get_weights()])
        inputs = IDS if not name.endswith("regressor") else rng.uniform(-1, 1, (5, T, 3)).astype(np.float32)
        outputs = model.predict(inputs, verbose=0)
        if LEGACY:
            model.save(os.path.join(OUT, f"legacy_{name}.h5"), save_format="h5")
            stem = f"legacy_{name}"
        else:
            model.save(os.path.join(OUT, f"{name}.keras"))
            if name == "functional_classifier":
                model.save(os.path.join(OUT, f"{name}.h5"))  # same predictions as the .keras file
            stem = name
        np.savez(os.path.join(OUT, f"{stem}_expected.npz"), inputs=inputs, outputs=outputs)
        print(stem, outputs.shape)
    keras.backend.clear_session()
    shared = shared_layer_model()
    shared.save(os.path.join(OUT, "legacy_functional_shared.h5" if LEGACY else "functional_shared.keras"),
                **({"save_format": "h5"} if LEGACY else {}))  # fmt: skip
    if not LEGACY:
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        subprocess.run([sys.executable, __file__, "--legacy"], check=True, env=env)


if __name__ == "__main__":
    main()
