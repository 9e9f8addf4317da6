"""Generate Keras LSTM golden files for fastlstm with REAL Keras.

Writes into tests/golden/keras/ (relative to the repo root):
  stacked.keras, stacked.weights.h5, stacked_expected.npz   Keras 3
      Sequential([Input((T, D)), LSTM(5, return_sequences=True),
                  LSTM(4, return_sequences=True)])
  bidi.keras, bidi.weights.h5, bidi_expected.npz            Keras 3
      Sequential([Input((T, D)), Bidirectional(LSTM(4, return_sequences=True))])
  legacy_stacked.h5, legacy_stacked_expected.npz            tf_keras (Keras 2)
  legacy_bidi.h5, legacy_bidi_expected.npz                  tf_keras (Keras 2)
      the same two architectures saved with model.save(..., save_format="h5")
  hard_sigmoid.keras, hard_sigmoid.h5, hard_sigmoid_expected.npz   Keras 3
      stacked, both LSTMs with recurrent_activation="hard_sigmoid" (Keras 3's:
      relu6(x + 3) / 6), saved with model.save as .keras and as legacy .h5
  legacy_hard_sigmoid.h5, legacy_hard_sigmoid_expected.npz  tf_keras (Keras 2)
      stacked with recurrent_activation="hard_sigmoid" (clip(0.2 x + 0.5, 0, 1)),
      model.save(..., save_format="h5")
  legacy_weights_stacked.h5, legacy_weights_stacked_expected.npz  tf_keras
  legacy_weights_bidi.h5, legacy_weights_bidi_expected.npz        tf_keras
      the two architectures (default sigmoid gates) saved with
      model.save_weights(path.h5): the weights-only legacy HDF5, no config;
      the stacked one also has "outputs_hard_sigmoid": the same weights run by
      tf_keras with recurrent_activation="hard_sigmoid"
  keras220_weights.h5, keras220_weights_expected.npz        tf_keras + h5py
      the layout of a standalone Keras 2.2.0 model.save_weights file (as the
      chars2vec package ships them): root attributes layer_names
      [input_1, lstm_1, lstm_2], keras_version "2.2.0", backend "tensorflow",
      per-layer weight_names "lstm_1/kernel:0", ...; written with h5py because
      Keras 2.2 does not install on today's Python. The model is Keras 2.2's
      default: LSTM(5, return_sequences=True), LSTM(4) (final output only),
      recurrent_activation "hard_sigmoid", run by tf_keras ("outputs"); and
      "outputs_sigmoid": the same weights with sigmoid gates.
  h5_layout.txt          every HDF5 dataset path/shape in the files above
See tests/golden/README.md for the key layout and the HDF5 paths.

TensorFlow / Keras are NOT dependencies of fastlstm; developers only.
Set up a throwaway venv outside the repo and run from the repo root:

    python -m venv /work/tfvenv
    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 h5py
    /work/tfvenv/bin/python tools/golden/make_keras_golden.py

Run it WITHOUT TF_USE_LEGACY_KERAS: the Keras 3 part runs in this process,
then the script re-runs itself with TF_USE_LEGACY_KERAS=1 --legacy for the
tf_keras part.  All weights (biases included, so no unit-forget-bias
initialiser value is left) are set from numpy with fixed seeds; outputs are
checked against np_reference.keras_lstm (max abs err < 1e-5).
"""

import io
import os
import subprocess
import sys
import zipfile
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
LEGACY = "--legacy" in sys.argv
if LEGACY != (os.environ.get("TF_USE_LEGACY_KERAS") == "1"):
    sys.exit("run without TF_USE_LEGACY_KERAS (the script sets it for its --legacy part)")

import h5py
import np_reference as ref
import numpy as np
import tensorflow as tf

if LEGACY:
    import tf_keras as keras
else:
    import keras

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "keras")
BATCH, T, D = 3, 6, 3
SCALE = 0.5


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def save_npz(path, d):
    np.savez(path, **d)
    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            np.testing.assert_array_equal(z[k], d[k])
    print(f"wrote {os.path.relpath(path, ROOT)}  ({os.path.getsize(path)} B)")


def build(kind, recurrent_activation="sigmoid", last_sequences=True):
    L = keras.layers
    if kind == "stacked":
        layers = [
            L.LSTM(5, return_sequences=True, name="lstm", recurrent_activation=recurrent_activation),
            L.LSTM(
                4, return_sequences=last_sequences, name="lstm_1", recurrent_activation=recurrent_activation
            ),
        ]
    else:
        layers = [
            L.Bidirectional(
                L.LSTM(4, return_sequences=True, name="lstm", recurrent_activation=recurrent_activation),
                name="bidirectional",
            )
        ]
    model = keras.Sequential([keras.Input((T, D))] + layers, name="sequential")
    return model


def randomize(model, name):
    rng = rng_for(name + "/weights")
    for layer in model.layers:
        ws = layer.get_weights()
        layer.set_weights([(rng.uniform(-1, 1, w.shape) * SCALE).astype(w.dtype) for w in ws])


def expected_for(kind, model, inputs, outputs, name, gate="sigmoid"):
    """The arrays of a golden .npz; ``gate`` names np_reference's recurrent activation."""
    d = {
        "inputs": inputs,
        "outputs": outputs,
        "keras_version": np.array(keras.__version__),
        "tensorflow_version": np.array(tf.__version__),
        "gate_order": np.array("i,f,c,o"),
        "layer_names": np.array([layer.name for layer in model.layers]),
    }
    want = []
    if kind == "stacked":
        x = inputs
        for k, layer in enumerate(model.layers):
            kern, rec, bias = layer.get_weights()
            d[f"layer{k}_kernel"], d[f"layer{k}_recurrent_kernel"], d[f"layer{k}_bias"] = kern, rec, bias
            d[f"layer{k}_units"] = np.array(rec.shape[0], np.int32)
            x, _, _ = ref.keras_lstm(x, kern, rec, bias, recurrent_activation=gate)
        want = x if outputs.ndim == 3 else x[:, -1]
    else:
        w = model.layers[0].get_weights()  # forward (k, rk, b) then backward (k, rk, b)
        for prefix, (kern, rec, bias) in (("forward", w[:3]), ("backward", w[3:])):
            d[f"{prefix}_kernel"], d[f"{prefix}_recurrent_kernel"], d[f"{prefix}_bias"] = kern, rec, bias
        d["merge_mode"] = np.array("concat")
        fw, _, _ = ref.keras_lstm(inputs, *w[:3], recurrent_activation=gate)
        bw, _, _ = ref.keras_lstm(inputs, *w[3:], go_backwards=True, recurrent_activation=gate)
        want = np.concatenate([fw, bw[:, ::-1]], axis=-1)  # backward re-reversed to input order
    err = ref.check(name, outputs, want, np.float32)
    print(f"  {name}: max err {err:.3g}")
    return d


def h5_tree(path_or_file):
    lines = []

    def visit(n, obj):
        if isinstance(obj, h5py.Dataset):
            lines.append(f"  {n}  {obj.shape} {obj.dtype}")

    with h5py.File(path_or_file, "r") as f:
        f.visititems(visit)
        attrs = {
            k: (v.decode() if isinstance(v, bytes) else v)
            for k, v in f.attrs.items()
            if k in ("keras_version", "backend")
        }
        if "model_weights" in f:
            attrs["model_weights.attrs.layer_names"] = [
                x.decode() if isinstance(x, bytes) else x for x in f["model_weights"].attrs["layer_names"]
            ]
    return lines, attrs


def h5_paths(kind, legacy):
    """The documented HDF5 dataset paths, in (kernel, recurrent_kernel, bias) order per LSTM."""
    names = ("kernel", "recurrent_kernel", "bias")
    if legacy:
        if kind == "stacked":
            groups = ["model_weights/lstm/lstm/lstm_cell", "model_weights/lstm_1/lstm_1/lstm_cell"]
        else:
            groups = [
                f"model_weights/bidirectional/bidirectional/{d}_lstm/lstm_cell"
                for d in ("forward", "backward")
            ]
        return [f"{g}/{n}:0" for g in groups for n in names]
    if kind == "stacked":
        groups = ["layers/lstm/cell/vars", "layers/lstm_1/cell/vars"]
    else:
        groups = [f"layers/bidirectional/{d}_layer/cell/vars" for d in ("forward", "backward")]
    return [f"{g}/{i}" for g in groups for i in range(3)]


def verify_h5(f_or_path, kind, legacy, model):
    """Check the documented paths hold exactly model.get_weights() (no Keras needed to read)."""
    want = model.get_weights()
    with h5py.File(f_or_path, "r") as f:
        got = [f[p][()] for p in h5_paths(kind, legacy)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def run_keras3():
    os.makedirs(OUT, exist_ok=True)
    report = [f"# Keras {keras.__version__} (TF {tf.__version__}), h5py {h5py.__version__}"]
    for kind in ("stacked", "bidi"):
        keras.utils.set_random_seed(0)
        model = build(kind)
        randomize(model, kind)
        inputs = rng_for(kind + "/inputs").uniform(-1, 1, (BATCH, T, D)).astype(np.float32)
        outputs = np.asarray(model.predict(inputs, verbose=0))
        d = expected_for(kind, model, inputs, outputs, kind)
        d["weight_paths"] = np.array([w.path for w in model.weights])
        kpath = os.path.join(OUT, f"{kind}.keras")
        wpath = os.path.join(OUT, f"{kind}.weights.h5")
        model.save(kpath)
        model.save_weights(wpath)
        save_npz(os.path.join(OUT, f"{kind}_expected.npz"), d)
        # reload check
        m2 = keras.saving.load_model(kpath)
        np.testing.assert_allclose(m2.predict(inputs, verbose=0), outputs, atol=1e-6)
        for p in (kpath, wpath):
            print(f"wrote {os.path.relpath(p, ROOT)}  ({os.path.getsize(p)} B)")
        verify_h5(wpath, kind, False, model)
        with zipfile.ZipFile(kpath) as z:
            verify_h5(io.BytesIO(z.read("model.weights.h5")), kind, False, model)
        lines, attrs = h5_tree(wpath)
        report += [f"\n## {kind}.weights.h5  {attrs}"] + lines
        with zipfile.ZipFile(kpath) as z:
            report.append(f"\n## {kind}.keras  zip members: {z.namelist()}")
            lines, attrs = h5_tree(io.BytesIO(z.read("model.weights.h5")))
            report += [f"### {kind}.keras :: model.weights.h5  {attrs}"] + lines
    report += [""] + run_keras3_hard_sigmoid()
    return report


def run_keras3_hard_sigmoid():
    """Keras 3 stacked LSTMs with recurrent_activation="hard_sigmoid" (relu6(x + 3) / 6)."""
    keras.utils.set_random_seed(0)
    model = build("stacked", recurrent_activation="hard_sigmoid")
    randomize(model, "hard_sigmoid")
    inputs = rng_for("hard_sigmoid/inputs").uniform(-1, 1, (BATCH, T, D)).astype(np.float32)
    outputs = np.asarray(model.predict(inputs, verbose=0))
    d = expected_for("stacked", model, inputs, outputs, "hard_sigmoid", gate="keras3_hard_sigmoid")
    d["recurrent_activation"] = np.array("hard_sigmoid")
    path = os.path.join(OUT, "hard_sigmoid.keras")
    model.save(path)
    save_npz(os.path.join(OUT, "hard_sigmoid_expected.npz"), d)
    m2 = keras.saving.load_model(path)
    np.testing.assert_allclose(m2.predict(inputs, verbose=0), outputs, atol=1e-6)
    print(f"wrote {os.path.relpath(path, ROOT)}  ({os.path.getsize(path)} B)")
    with zipfile.ZipFile(path) as z:
        verify_h5(io.BytesIO(z.read("model.weights.h5")), "stacked", False, model)
        lines, attrs = h5_tree(io.BytesIO(z.read("model.weights.h5")))
    report = [f"## hard_sigmoid.keras :: model.weights.h5  {attrs}"] + lines
    # The same model as a Keras 3 legacy HDF5 (keras_version 3.15.1): same expected outputs.
    legacy = os.path.join(OUT, "hard_sigmoid.h5")
    model.save(legacy)
    np.testing.assert_allclose(keras.saving.load_model(legacy).predict(inputs, verbose=0), outputs, atol=1e-6)
    print(f"wrote {os.path.relpath(legacy, ROOT)}  ({os.path.getsize(legacy)} B)")
    lines, attrs = h5_tree(legacy)
    return report + [f"\n## hard_sigmoid.h5 (Keras 3 model.save('x.h5'))  {attrs}"] + lines


def run_legacy():
    report = [f"\n# tf_keras {keras.__version__} (TF {tf.__version__}), legacy model.save(save_format='h5')"]
    for kind in ("stacked", "bidi"):
        keras.utils.set_random_seed(0)
        model = build(kind)
        randomize(model, kind)
        inputs = rng_for(kind + "/inputs").uniform(-1, 1, (BATCH, T, D)).astype(np.float32)
        outputs = np.asarray(model.predict(inputs, verbose=0))
        name = f"legacy_{kind}"
        d = expected_for(kind, model, inputs, outputs, name)
        d["weight_paths"] = np.array([w.name for w in model.weights])
        path = os.path.join(OUT, f"{name}.h5")
        model.save(path, save_format="h5")
        save_npz(os.path.join(OUT, f"{name}_expected.npz"), d)
        m2 = keras.models.load_model(path)
        np.testing.assert_allclose(m2.predict(inputs, verbose=0), outputs, atol=1e-6)
        print(f"wrote {os.path.relpath(path, ROOT)}  ({os.path.getsize(path)} B)")
        verify_h5(path, kind, True, model)
        lines, attrs = h5_tree(path)
        report += [f"\n## {name}.h5  {attrs}"] + lines
    report += legacy_hard_sigmoid() + legacy_weights_only() + keras220_weights()
    return report


def legacy_hard_sigmoid():
    """tf_keras full-model .h5 of stacked LSTMs with recurrent_activation="hard_sigmoid"."""
    keras.utils.set_random_seed(0)
    model = build("stacked", recurrent_activation="hard_sigmoid")
    randomize(model, "legacy_hard_sigmoid")
    inputs = rng_for("legacy_hard_sigmoid/inputs").uniform(-1, 1, (BATCH, T, D)).astype(np.float32)
    outputs = np.asarray(model.predict(inputs, verbose=0))
    d = expected_for("stacked", model, inputs, outputs, "legacy_hard_sigmoid", gate="hard_sigmoid")
    d["recurrent_activation"] = np.array("hard_sigmoid")
    d["weight_paths"] = np.array([w.name for w in model.weights])
    path = os.path.join(OUT, "legacy_hard_sigmoid.h5")
    model.save(path, save_format="h5")
    save_npz(os.path.join(OUT, "legacy_hard_sigmoid_expected.npz"), d)
    m2 = keras.models.load_model(path)
    np.testing.assert_allclose(m2.predict(inputs, verbose=0), outputs, atol=1e-6)
    print(f"wrote {os.path.relpath(path, ROOT)}  ({os.path.getsize(path)} B)")
    verify_h5(path, "stacked", True, model)
    lines, attrs = h5_tree(path)
    return [f"\n## legacy_hard_sigmoid.h5  {attrs}"] + lines


def weights_only_paths(kind):
    """The HDF5 dataset paths of a tf_keras model.save_weights(.h5) file, in get_weights() order."""
    names = ("kernel", "recurrent_kernel", "bias")
    if kind == "stacked":
        groups = ["lstm/lstm/lstm_cell", "lstm_1/lstm_1/lstm_cell"]
    else:
        groups = [f"bidirectional/bidirectional/{d}_lstm/lstm_cell" for d in ("forward", "backward")]
    return [f"{g}/{n}:0" for g in groups for n in names]


def legacy_weights_only():
    """tf_keras model.save_weights("x.h5"): layer groups at the root, no model config."""
    report = []
    for kind in ("stacked", "bidi"):
        keras.utils.set_random_seed(0)
        model = build(kind)
        name = f"legacy_weights_{kind}"
        randomize(model, name)
        inputs = rng_for(name + "/inputs").uniform(-1, 1, (BATCH, T, D)).astype(np.float32)
        outputs = np.asarray(model.predict(inputs, verbose=0))
        d = expected_for(kind, model, inputs, outputs, name)
        d["weight_paths"] = np.array([w.name for w in model.weights])
        if kind == "stacked":
            hard = build(kind, recurrent_activation="hard_sigmoid")
            hard.set_weights(model.get_weights())
            d["outputs_hard_sigmoid"] = np.asarray(hard.predict(inputs, verbose=0))
            x = inputs
            for layer in model.layers:
                x, _, _ = ref.keras_lstm(x, *layer.get_weights(), recurrent_activation="hard_sigmoid")
            err = ref.check(name + " hard_sigmoid", d["outputs_hard_sigmoid"], x, np.float32)
            print(f"  {name} hard_sigmoid: max err {err:.3g}")
        path = os.path.join(OUT, f"{name}.h5")
        model.save_weights(path)
        save_npz(os.path.join(OUT, f"{name}_expected.npz"), d)
        m2 = build(kind)
        m2.load_weights(path)
        np.testing.assert_array_equal(m2.predict(inputs, verbose=0), outputs)
        print(f"wrote {os.path.relpath(path, ROOT)}  ({os.path.getsize(path)} B)")
        with h5py.File(path, "r") as f:
            got = [f[p][()] for p in weights_only_paths(kind)]
            assert "model_config" not in f.attrs and list(f.attrs["layer_names"])
        for g, w in zip(got, model.get_weights(), strict=True):
            np.testing.assert_array_equal(g, w)
        lines, attrs = h5_tree(path)
        attrs["layer_names"] = [
            x.decode() if isinstance(x, bytes) else x for x in h5py.File(path)["/"].attrs["layer_names"]
        ]
        report += [f"\n## {name}.h5  {attrs}"] + lines
    return report


def keras220_weights():
    """A standalone Keras 2.2.0 save_weights layout (chars2vec's weights.h5), written with h5py."""
    keras.utils.set_random_seed(0)
    name = "keras220_weights"
    model = build("stacked", recurrent_activation="hard_sigmoid", last_sequences=False)
    randomize(model, name)
    inputs = rng_for(name + "/inputs").uniform(-1, 1, (BATCH, T, D)).astype(np.float32)
    outputs = np.asarray(model.predict(inputs, verbose=0))
    d = expected_for("stacked", model, inputs, outputs, name, gate="hard_sigmoid")
    d["layer_names"] = np.array(["lstm_1", "lstm_2"])
    soft = build("stacked", last_sequences=False)
    soft.set_weights(model.get_weights())
    d["outputs_sigmoid"] = np.asarray(soft.predict(inputs, verbose=0))
    path = os.path.join(OUT, f"{name}.h5")
    ascii_vlen = h5py.string_dtype("ascii")
    with h5py.File(path, "w", libver="earliest") as f:
        # Keras 2.2.0 (h5py 2.x): scalar bytes became variable-length ASCII strings,
        # lists of bytes fixed-length ones; a layer without weights has an empty float list.
        f.attrs.create("backend", b"tensorflow", dtype=ascii_vlen)
        f.attrs.create("keras_version", b"2.2.0", dtype=ascii_vlen)
        f.attrs["layer_names"] = np.array([b"input_1", b"lstm_1", b"lstm_2"])
        f.create_group("input_1").attrs["weight_names"] = np.array([], np.float64)
        for layer_name, layer in zip(("lstm_1", "lstm_2"), model.layers, strict=True):
            group = f.create_group(layer_name)
            weight_names = [f"{layer_name}/{n}:0" for n in ("kernel", "recurrent_kernel", "bias")]
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names])
            for weight_name, value in zip(weight_names, layer.get_weights(), strict=True):
                group[weight_name] = value
    save_npz(os.path.join(OUT, f"{name}_expected.npz"), d)
    m2 = build("stacked", recurrent_activation="hard_sigmoid", last_sequences=False)
    m2.load_weights(path)  # tf_keras reads it as a Keras 2.2.0 file
    np.testing.assert_array_equal(m2.predict(inputs, verbose=0), outputs)
    print(f"wrote {os.path.relpath(path, ROOT)}  ({os.path.getsize(path)} B)")
    lines, attrs = h5_tree(path)
    return [f"\n## {name}.h5  {attrs} (written with h5py in Keras 2.2.0's layout)"] + lines


def main():
    if LEGACY:
        sys.stdout.write("\n".join(run_legacy()) + "\n")
        return
    report = run_keras3()
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    res = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--legacy"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    legacy_lines = []
    for line in res.stdout.splitlines():
        if line.startswith(("wrote", "  legacy")):
            print(line)
        elif legacy_lines or line.startswith("# tf_keras"):
            legacy_lines.append(line)
    report += [""] + legacy_lines
    p = os.path.join(OUT, "h5_layout.txt")
    with open(p, "w") as f:
        f.write("\n".join(report).rstrip() + "\n")
    print(f"wrote {os.path.relpath(p, ROOT)}")


if __name__ == "__main__":
    main()
