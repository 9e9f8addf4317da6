"""Generate TF1 golden reference files for fastlstm with REAL TensorFlow.

Writes into tests/golden/ (relative to the repo root):
  basic_<case>.npz        BasicLSTMCell + tf.compat.v1.nn.dynamic_rnn
  lstm_<case>.npz         LSTMCell (peepholes / cell_clip / num_proj / proj_clip)
  multi_rnn.npz           MultiRNNCell([BasicLSTMCell(5), LSTMCell(4, peepholes)])
  bidirectional.npz       bidirectional_dynamic_rnn(BasicLSTMCell(4), BasicLSTMCell(5))
  ckpt/<name>/model.ckpt.{index,data-00000-of-00001} + ckpt/<name>/expected.npz
                          tf.compat.v1.train.Saver checkpoints (tensor-bundle V2)
See tests/golden/README.md for the key layout.

TensorFlow is NOT a dependency of fastlstm; this script is for developers only.
Set up a throwaway venv outside the repo and run from the repo root:

    python -m venv /work/tfvenv
    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 h5py
    TF_USE_LEGACY_KERAS=1 /work/tfvenv/bin/python tools/golden/make_tf_golden.py

TF_USE_LEGACY_KERAS=1 is required: the tf.compat.v1 RNN cells live in tf_keras
and BasicLSTMCell fails under Keras 3.  Every fixture is checked against the
pure-numpy formulas in np_reference.py (max abs err < 1e-5 float32, < 1e-12
float64) and re-loaded with np.load(allow_pickle=False).  Output is
deterministic (fixed numpy seeds; all weights are assigned from numpy).
"""

import inspect
import os
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    sys.exit("run with TF_USE_LEGACY_KERAS=1 (see the docstring)")

import np_reference as ref
import numpy as np
import tensorflow as tf
import tf_keras

tf.compat.v1.disable_eager_execution()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden")
WEIGHT_SCALE = 0.5

rnn_cell = tf.compat.v1.nn.rnn_cell
TF_ACT = {
    "tanh": tf.tanh,
    "relu": tf.nn.relu,
    "sigmoid": tf.sigmoid,
    "softsign": tf.nn.softsign,
    "elu": tf.nn.elu,
    "relu6": tf.nn.relu6,
    "selu": tf.nn.selu,
    "swish": tf.nn.swish,
    "hard_sigmoid": tf.keras.activations.hard_sigmoid,  # tf_keras (legacy)
    "linear": tf.identity,
}


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def s(x):
    """0-d unicode array (loadable with allow_pickle=False)."""
    return np.array(str(x))


def save_npz(path, d):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, **d)
    with np.load(path, allow_pickle=False) as z:  # verify: no pickled objects
        for k in z.files:
            assert z[k].dtype != object, (path, k)
            np.testing.assert_array_equal(z[k], d[k])
    print(f"wrote {os.path.relpath(path, ROOT)}  ({os.path.getsize(path)} B)")


def short_key(var_name):
    """'rnn/lstm_cell/projection/kernel' -> 'projection_kernel', etc."""
    base = var_name.split("/")[-1]
    if var_name.split("/")[-2:] == ["projection", "kernel"]:
        return "projection_kernel"
    return base


def run_graph(name, build, feeds_np, np_dtype, ckpt_dir=None, weight_scale=WEIGHT_SCALE):
    """Build a graph, init, assign every trainable variable from numpy, run.

    build(x_placeholder) -> dict of fetch tensors.  Returns (fetched values,
    ordered list of (variable name, value)).
    """
    rng = rng_for(name + "/weights")
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(1234)
        x = tf.compat.v1.placeholder(tf.as_dtype(np_dtype), feeds_np.shape, name="inputs")
        fetches = build(x)
        tvars = tf.compat.v1.trainable_variables()
        saver = tf.compat.v1.train.Saver() if ckpt_dir else None
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            variables = []
            for v in tvars:
                shape = v.shape.as_list()
                val = (rng.uniform(-1.0, 1.0, shape) * weight_scale).astype(np_dtype)
                v.load(val, sess)
                variables.append((v.name[:-2], val))
            for (n, val), v in zip(variables, tvars):  # assigned for real
                np.testing.assert_array_equal(sess.run(v), val)
            out = sess.run(fetches, {x: feeds_np})
            if ckpt_dir:
                os.makedirs(ckpt_dir, exist_ok=True)
                prefix = os.path.join(ckpt_dir, "model.ckpt")
                saver.save(sess, prefix, write_meta_graph=False)
                ck = os.path.join(ckpt_dir, "checkpoint")
                if os.path.exists(ck):  # holds absolute paths; not needed
                    os.remove(ck)
    return out, variables


def random_inputs(name, batch, max_time, depth, np_dtype):
    rng = rng_for(name + "/inputs")
    return rng.uniform(-1.0, 1.0, (batch, max_time, depth)).astype(np_dtype)


# --------------------------------------------------------------------------
# BasicLSTMCell cases
# --------------------------------------------------------------------------
B, T, D, U = 4, 7, 3, 5
LENGTHS = np.array([7, 0, 3, 1], np.int32)


def basic_case(
    case,
    dtype="float32",
    forget_bias=1.0,
    activation="tanh",
    time_major=False,
    initial_state=False,
    lengths=LENGTHS,
    state_is_tuple=True,
    ckpt_dir=None,
    extra=None,
):
    name = "basic_" + case
    np_dtype = np.dtype(dtype)
    inputs_bm = random_inputs(name, B, T, D, np_dtype)  # batch-major
    feed = np.ascontiguousarray(inputs_bm.transpose(1, 0, 2)) if time_major else inputs_bm
    init = None
    if initial_state:
        r = rng_for(name + "/init")
        init = tuple((r.uniform(-1, 1, (B, U)) * WEIGHT_SCALE).astype(np_dtype) for _ in range(2))

    def build(x):
        cell = rnn_cell.BasicLSTMCell(
            U,
            forget_bias=forget_bias,
            state_is_tuple=state_is_tuple,
            activation=TF_ACT[activation],
            dtype=tf.as_dtype(np_dtype),
        )
        init_state = None
        if init is not None:
            init_state = rnn_cell.LSTMStateTuple(tf.constant(init[0]), tf.constant(init[1]))
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            cell,
            x,
            sequence_length=None if lengths is None else tf.constant(lengths),
            initial_state=init_state,
            dtype=tf.as_dtype(np_dtype),
            time_major=time_major,
        )
        return {"outputs": outputs, "state": state}

    out, variables = run_graph(name, build, feed, np_dtype, ckpt_dir=ckpt_dir)
    vd = dict(variables)
    kernel = vd["rnn/basic_lstm_cell/kernel"]
    bias = vd["rnn/basic_lstm_cell/bias"]
    assert kernel.shape == (D + U, 4 * U) and bias.shape == (4 * U,)
    outputs = out["outputs"]
    if state_is_tuple:
        final_c, final_h = out["state"]
    else:
        final_c, final_h = np.split(out["state"], 2, axis=1)

    # numpy reference
    step = ref.basic_lstm_step(kernel, bias, forget_bias, ref.ACTIVATIONS[activation])
    z = np.zeros((B, U))
    want_out, (want_c, want_h) = ref.dynamic_rnn(
        step, inputs_bm, lengths, (z, z) if init is None else tuple(map(ref.f64, init)), U
    )
    got_out_bm = outputs.transpose(1, 0, 2) if time_major else outputs
    errs = [
        ref.check(name + " outputs", got_out_bm, want_out, np_dtype),
        ref.check(name + " final_c", final_c, want_c, np_dtype),
        ref.check(name + " final_h", final_h, want_h, np_dtype),
    ]

    d = {
        "inputs": feed,
        "kernel": kernel,
        "bias": bias,
        "forget_bias": np.array(float(forget_bias)),
        "activation": s(activation),
        "time_major": np.array(bool(time_major)),
        "state_is_tuple": np.array(bool(state_is_tuple)),
        "num_units": np.array(U, np.int32),
        "outputs": outputs,
        "final_c": final_c,
        "final_h": final_h,
        "dtype": s(np_dtype.name),
        "variable_names": np.array([n for n, _ in variables]),
    }
    if lengths is not None:
        d["sequence_length"] = np.asarray(lengths, np.int32)
    if init is not None:
        d["initial_c"], d["initial_h"] = init
    if not state_is_tuple:
        d["final_state_concat"] = out["state"]
    if extra:
        d.update(extra)
    print(f"  {name}: max err {max(errs):.3g}")
    return d, variables


def hard_sigmoid_grid():
    x = np.unique(np.concatenate([np.linspace(-4, 4, 33), [-2.5, -2.4999, 2.4999, 2.5, 0.1, -0.1]]))
    x = x.astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        y = tf.keras.activations.hard_sigmoid(tf.constant(x))
        with tf.compat.v1.Session(graph=g) as sess:
            y = sess.run(y)
    np.testing.assert_allclose(y, np.clip(0.2 * x.astype(np.float64) + 0.5, 0, 1), atol=1e-6)
    try:
        src = inspect.getsource(tf.keras.backend.hard_sigmoid)
    except (OSError, TypeError):  # source not shipped with this build
        src = ""
    return {
        "hard_sigmoid_grid_x": x,
        "hard_sigmoid_grid_y": y,
        "hard_sigmoid_formula": s(
            f"clip(0.2 * x + 0.5, 0, 1)  (tf_keras {tf_keras.__version__} backend.hard_sigmoid)"
        ),
        "hard_sigmoid_source": s(src),
    }


def make_basic():
    cases = [
        ("default", {}),
        ("float64", {"dtype": "float64"}),
        ("forget_bias0", {"forget_bias": 0.0}),
        ("forget_bias2p5", {"forget_bias": 2.5}),
        ("time_major", {"time_major": True}),
        ("initial_state", {"initial_state": True}),
        ("no_lengths", {"lengths": None}),
        ("not_tuple", {"state_is_tuple": False}),
    ]
    for act in ["relu", "sigmoid", "softsign", "elu", "relu6", "selu", "swish", "hard_sigmoid", "linear"]:
        extra = hard_sigmoid_grid() if act == "hard_sigmoid" else None
        cases.append((act, {"activation": act, "extra": extra}))
    for case, kw in cases:
        d, _ = basic_case(case, **kw)
        save_npz(os.path.join(OUT, f"basic_{case}.npz"), d)


# --------------------------------------------------------------------------
# LSTMCell cases
# --------------------------------------------------------------------------
LB, LT, LD, LU = 4, 6, 4, 5
LLENGTHS = np.array([6, 2, 0, 5], np.int32)


def lstm_case(
    case,
    use_peepholes=False,
    cell_clip=None,
    num_proj=None,
    proj_clip=None,
    forget_bias=1.0,
    dtype="float32",
    ckpt_dir=None,
    name=None,
    weight_scale=WEIGHT_SCALE,
):
    name = name or case
    np_dtype = np.dtype(dtype)
    inputs = random_inputs(name, LB, LT, LD, np_dtype)

    def build(x):
        cell = rnn_cell.LSTMCell(
            LU,
            use_peepholes=use_peepholes,
            cell_clip=cell_clip,
            num_proj=num_proj,
            proj_clip=proj_clip,
            forget_bias=forget_bias,
            dtype=tf.as_dtype(np_dtype),
        )
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            cell, x, sequence_length=tf.constant(LLENGTHS), dtype=tf.as_dtype(np_dtype)
        )
        return {"outputs": outputs, "state": state}

    out, variables = run_graph(name, build, inputs, np_dtype, ckpt_dir=ckpt_dir, weight_scale=weight_scale)
    sv = {short_key(n): v for n, v in variables}
    final_c, final_h = out["state"]
    P = num_proj or LU
    assert sv["kernel"].shape == (LD + P, 4 * LU)

    stats = {}
    step = ref.lstm_cell_step(
        sv["kernel"],
        sv["bias"],
        forget_bias,
        np.tanh,
        sv.get("w_f_diag"),
        sv.get("w_i_diag"),
        sv.get("w_o_diag"),
        cell_clip,
        sv.get("projection_kernel"),
        proj_clip,
        stats,
    )
    want_out, (want_c, want_h) = ref.dynamic_rnn(
        step, inputs, LLENGTHS, (np.zeros((LB, LU)), np.zeros((LB, P))), P
    )
    errs = [
        ref.check(name + " outputs", out["outputs"], want_out, np_dtype),
        ref.check(name + " final_c", final_c, want_c, np_dtype),
        ref.check(name + " final_h", final_h, want_h, np_dtype),
    ]
    if cell_clip is not None:
        assert stats.get("cell_clip_hits", 0) > 0, f"{name}: cell_clip never active"
    if proj_clip is not None:
        assert stats.get("proj_clip_hits", 0) > 0, f"{name}: proj_clip never active"
    print(f"  {name}: max err {max(errs):.3g}  clip hits {stats}")

    d = {
        "inputs": inputs,
        "sequence_length": LLENGTHS,
        "forget_bias": np.array(float(forget_bias)),
        "activation": s("tanh"),
        "time_major": np.array(False),
        "state_is_tuple": np.array(True),
        "num_units": np.array(LU, np.int32),
        "use_peepholes": np.array(bool(use_peepholes)),
        "cell_clip": np.array(np.nan if cell_clip is None else float(cell_clip)),
        "num_proj": np.array(0 if num_proj is None else num_proj, np.int32),
        "proj_clip": np.array(np.nan if proj_clip is None else float(proj_clip)),
        "outputs": out["outputs"],
        "final_c": final_c,
        "final_h": final_h,
        "dtype": s(np_dtype.name),
        "variable_names": np.array([n for n, _ in variables]),
    }
    d.update(sv)
    return d, variables


def make_lstm():
    cases = [
        ("lstm_plain", {}),
        ("lstm_peepholes", {"use_peepholes": True}),
        ("lstm_clip", {"use_peepholes": True, "cell_clip": 0.5}),
        ("lstm_proj", {"num_proj": 3}),
        (
            "lstm_proj_clip",
            {"num_proj": 3, "proj_clip": 0.2, "cell_clip": 1.0, "use_peepholes": True, "weight_scale": 1.5},
        ),  # larger weights so cell_clip=1.0 bites
    ]
    for case, kw in cases:
        d, _ = lstm_case(case, **kw)
        save_npz(os.path.join(OUT, f"{case}.npz"), d)


# --------------------------------------------------------------------------
# MultiRNNCell
# --------------------------------------------------------------------------
def make_multi():
    name = "multi_rnn"
    np_dtype = np.dtype("float32")
    inputs = random_inputs(name, B, T, D, np_dtype)

    def build(x):
        cell = rnn_cell.MultiRNNCell([rnn_cell.BasicLSTMCell(5), rnn_cell.LSTMCell(4, use_peepholes=True)])
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            cell, x, sequence_length=tf.constant(LENGTHS), dtype=tf.float32
        )
        return {"outputs": outputs, "state": state}

    out, variables = run_graph(name, build, inputs, np_dtype)
    d = {
        "inputs": inputs,
        "sequence_length": LENGTHS,
        "outputs": out["outputs"],
        "dtype": s("float32"),
        "variable_names": np.array([n for n, _ in variables]),
        "num_layers": np.array(2, np.int32),
        "layer0_cell": s("BasicLSTMCell"),
        "layer0_num_units": np.array(5, np.int32),
        "layer1_cell": s("LSTMCell"),
        "layer1_num_units": np.array(4, np.int32),
        "layer1_use_peepholes": np.array(True),
        "forget_bias": np.array(1.0),
        "activation": s("tanh"),
    }
    for n, v in variables:
        layer = int(n.split("/cell_")[1].split("/")[0])
        d[f"layer{layer}_{short_key(n)}"] = v
    for k, (c, h) in enumerate(out["state"]):
        d[f"final_c_{k}"], d[f"final_h_{k}"] = c, h

    step = ref.multi_step(
        [
            ref.basic_lstm_step(d["layer0_kernel"], d["layer0_bias"], 1.0, np.tanh),
            ref.lstm_cell_step(
                d["layer1_kernel"],
                d["layer1_bias"],
                1.0,
                np.tanh,
                d["layer1_w_f_diag"],
                d["layer1_w_i_diag"],
                d["layer1_w_o_diag"],
            ),
        ]
    )
    z5, z4 = np.zeros((B, 5)), np.zeros((B, 4))
    want_out, want_state = ref.dynamic_rnn(step, inputs, LENGTHS, ((z5, z5), (z4, z4)), 4)
    errs = [ref.check("multi outputs", d["outputs"], want_out, np_dtype)]
    for k in range(2):
        errs.append(ref.check(f"multi c{k}", d[f"final_c_{k}"], want_state[k][0], np_dtype))
        errs.append(ref.check(f"multi h{k}", d[f"final_h_{k}"], want_state[k][1], np_dtype))
    print(f"  {name}: max err {max(errs):.3g}")
    save_npz(os.path.join(OUT, "multi_rnn.npz"), d)


# --------------------------------------------------------------------------
# bidirectional_dynamic_rnn
# --------------------------------------------------------------------------
def bidi_case(name, np_dtype, ckpt_dir=None, fw_units=4, bw_units=5):
    np_dtype = np.dtype(np_dtype)
    inputs = random_inputs(name, B, T, D, np_dtype)

    def build(x):
        (of, ob), (sf, sb) = tf.compat.v1.nn.bidirectional_dynamic_rnn(
            rnn_cell.BasicLSTMCell(fw_units),
            rnn_cell.BasicLSTMCell(bw_units),
            x,
            sequence_length=tf.constant(LENGTHS),
            dtype=tf.as_dtype(np_dtype),
        )
        return {"output_fw": of, "output_bw": ob, "state_fw": sf, "state_bw": sb}

    out, variables = run_graph(name, build, inputs, np_dtype, ckpt_dir=ckpt_dir)
    d = {
        "inputs": inputs,
        "sequence_length": LENGTHS,
        "dtype": s(np_dtype.name),
        "variable_names": np.array([n for n, _ in variables]),
        "fw_num_units": np.array(fw_units, np.int32),
        "bw_num_units": np.array(bw_units, np.int32),
        "forget_bias": np.array(1.0),
        "activation": s("tanh"),
        "output_fw": out["output_fw"],
        "output_bw": out["output_bw"],
    }
    d["final_c_fw"], d["final_h_fw"] = out["state_fw"]
    d["final_c_bw"], d["final_h_bw"] = out["state_bw"]
    for n, v in variables:
        direction = n.split("/")[1]  # bidirectional_rnn/fw/basic_lstm_cell/kernel
        assert direction in ("fw", "bw"), n
        d[f"{direction}_{short_key(n)}"] = v

    errs = []
    for direction, units in (("fw", fw_units), ("bw", bw_units)):
        step = ref.basic_lstm_step(d[f"{direction}_kernel"], d[f"{direction}_bias"], 1.0, np.tanh)
        x = inputs if direction == "fw" else ref.reverse_sequence(inputs, LENGTHS)
        z = np.zeros((B, units))
        o, (c, h) = ref.dynamic_rnn(step, x, LENGTHS, (z, z), units)
        if direction == "bw":
            o = ref.reverse_sequence(o, LENGTHS)
        errs += [
            ref.check(f"{name} output_{direction}", d[f"output_{direction}"], o, np_dtype),
            ref.check(f"{name} c_{direction}", d[f"final_c_{direction}"], c, np_dtype),
            ref.check(f"{name} h_{direction}", d[f"final_h_{direction}"], h, np_dtype),
        ]
    print(f"  {name}: max err {max(errs):.3g}")
    return d, variables


def make_bidi():
    d, _ = bidi_case("bidirectional", "float32")
    save_npz(os.path.join(OUT, "bidirectional.npz"), d)


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------
CKPT_KEYS = [
    "inputs",
    "sequence_length",
    "outputs",
    "final_c",
    "final_h",
    "output_fw",
    "output_bw",
    "final_c_fw",
    "final_h_fw",
    "final_c_bw",
    "final_h_bw",
    "dtype",
    "forget_bias",
    "activation",
    "num_units",
    "use_peepholes",
    "cell_clip",
    "num_proj",
    "proj_clip",
    "fw_num_units",
    "bw_num_units",
    "time_major",
    "state_is_tuple",
]


def write_ckpt_expected(ckpt_dir, d, variables, extra=None):
    # Verify what TF's own reader sees in the bundle.
    prefix = os.path.join(ckpt_dir, "model.ckpt")
    listed = dict(tf.train.list_variables(prefix))
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(n for n, _ in variables)
    assert sorted(listed) == names, (sorted(listed), names)
    vd = dict(variables)
    for n in names:
        assert list(listed[n]) == list(vd[n].shape)
        got = reader.get_tensor(n)
        assert got.dtype == vd[n].dtype, (n, got.dtype)
        np.testing.assert_array_equal(got, vd[n])
    e = {k: d[k] for k in CKPT_KEYS if k in d}
    e["variable_names"] = np.array(names)  # sorted, as stored in the bundle
    for i, n in enumerate(names):
        e[f"variable_{i}"] = vd[n]
    if extra:
        e.update(extra)
    save_npz(os.path.join(ckpt_dir, "expected.npz"), e)


def make_ckpts():
    cdir = os.path.join(OUT, "ckpt")
    for sub, dtype in (("basic", "float32"), ("basic_f64", "float64")):
        p = os.path.join(cdir, sub)
        d, variables = basic_case("ckpt_" + sub, dtype=dtype, ckpt_dir=p)
        write_ckpt_expected(p, d, variables)

    p = os.path.join(cdir, "lstm_proj")
    d, variables = lstm_case("lstm_proj", use_peepholes=True, num_proj=3, ckpt_dir=p, name="ckpt_lstm_proj")
    write_ckpt_expected(p, d, variables)

    # MultiRNNCell of 2 BasicLSTMCells under scope "rnn"
    p = os.path.join(cdir, "multi")
    name = "ckpt_multi"
    inputs = random_inputs(name, B, T, D, np.float32)

    def build(x):
        cell = rnn_cell.MultiRNNCell([rnn_cell.BasicLSTMCell(5), rnn_cell.BasicLSTMCell(4)])
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            cell, x, sequence_length=tf.constant(LENGTHS), dtype=tf.float32, scope="rnn"
        )
        return {"outputs": outputs, "state": state}

    out, variables = run_graph(name, build, inputs, np.float32, ckpt_dir=p)
    vd = dict(variables)
    k = [vd[f"rnn/multi_rnn_cell/cell_{i}/basic_lstm_cell/kernel"] for i in range(2)]
    b = [vd[f"rnn/multi_rnn_cell/cell_{i}/basic_lstm_cell/bias"] for i in range(2)]
    step = ref.multi_step(
        [ref.basic_lstm_step(k[0], b[0], 1.0, np.tanh), ref.basic_lstm_step(k[1], b[1], 1.0, np.tanh)]
    )
    z5, z4 = np.zeros((B, 5)), np.zeros((B, 4))
    want_out, want_state = ref.dynamic_rnn(step, inputs, LENGTHS, ((z5, z5), (z4, z4)), 4)
    ref.check("ckpt multi outputs", out["outputs"], want_out, np.float32)
    d = {
        "inputs": inputs,
        "sequence_length": LENGTHS,
        "outputs": out["outputs"],
        "dtype": s("float32"),
        "forget_bias": np.array(1.0),
        "activation": s("tanh"),
    }
    extra = {"num_layers": np.array(2, np.int32), "layer_num_units": np.array([5, 4], np.int32)}
    for i, (c, h) in enumerate(out["state"]):
        ref.check(f"ckpt multi c{i}", c, want_state[i][0], np.float32)
        ref.check(f"ckpt multi h{i}", h, want_state[i][1], np.float32)
        extra[f"final_c_{i}"], extra[f"final_h_{i}"] = c, h
    write_ckpt_expected(p, d, variables, extra)

    p = os.path.join(cdir, "bidi")
    d, variables = bidi_case("ckpt_bidi", "float32", ckpt_dir=p)
    write_ckpt_expected(p, d, variables)


def main():
    print("tensorflow", tf.__version__)
    make_basic()
    make_lstm()
    make_multi()
    make_bidi()
    make_ckpts()


if __name__ == "__main__":
    main()
