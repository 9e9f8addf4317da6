"""Embedding in front, Dense layers behind: LSTMModel against numpy references of Keras' semantics."""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
import naive
from cell_helpers import basic_cell, naive_run

VOCAB, EMBED, UNITS = 12, 3, 4


def weights(seed, *shape):
    return np.random.default_rng(seed).uniform(-0.8, 0.8, shape).astype(np.float32)


def embedding(mask_zero=True, seed=0):
    return fastlstm.Embedding(weights(seed, VOCAB, EMBED), mask_zero=mask_zero)


def head(units=2, activation="sigmoid", seed=1, depth=UNITS, bias=True):
    return fastlstm.Dense(weights(seed, depth, units), weights(seed + 1, units) if bias else None, activation)


def cell_options(cell):
    return {"forget_bias": cell.forget_bias, "activation": "tanh"}


# Pre-padding (Keras' default), post-padding, zeros inside, an all-padding row, no padding.
IDS = np.array(
    [
        [0, 0, 3, 5, 7, 2],
        [3, 5, 7, 2, 0, 0],
        [4, 0, 9, 0, 0, 11],
        [0, 0, 0, 0, 0, 0],
        [1, 2, 3, 4, 5, 6],
    ]
)


# -- layers against the Keras reference ----------------------------------------------------------
@pytest.mark.parametrize("return_sequences", [True, False])
def test_masked_classifier_against_keras_reference(return_sequences):
    cell = basic_cell(UNITS, EMBED)
    emb, dense = embedding(), head(activation="sigmoid")
    model = fastlstm.LSTMModel([emb, cell, dense], return_sequences=return_sequences)
    outputs, (state,) = model(IDS)
    x = emb.embeddings[IDS]
    ref_outputs, ref_last, (ref_c, ref_h) = naive.keras_masked_rnn(
        x, IDS != 0, cell.kernel, cell.bias, **cell_options(cell)
    )
    want = naive.dense(ref_outputs if return_sequences else ref_last, dense.kernel, dense.bias, "sigmoid")
    assert outputs.shape == want.shape == ((5, 6, 2) if return_sequences else (5, 2))
    np.testing.assert_allclose(outputs, want, atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.c, ref_c, atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.h, ref_h, atol=2e-6, rtol=0)
    # Pre- and post-padding of one sequence give one prediction (and one state).
    np.testing.assert_array_equal(state.h[0], state.h[1])


def test_masked_bidirectional_and_stack_against_keras_reference():
    """Embedding -> LSTM(return_sequences) -> Bidirectional(LSTM) -> TimeDistributed(Dense, softmax)."""
    bottom = basic_cell(UNITS, EMBED, seed=2)
    fw, bw = basic_cell(UNITS, UNITS, seed=3), basic_cell(UNITS, UNITS, seed=4)
    emb, dense = embedding(seed=5), head(3, "softmax", seed=6, depth=2 * UNITS)
    model = fastlstm.LSTMModel([emb, bottom, (fw, bw), dense])
    outputs, (_, (s_fw, s_bw)) = model(IDS)
    mask = IDS != 0
    h1, _, _ = naive.keras_masked_rnn(emb.embeddings[IDS], mask, bottom.kernel, bottom.bias)
    out_fw, _, (_, h_fw) = naive.keras_masked_rnn(h1, mask, fw.kernel, fw.bias, zero_output_for_mask=True)
    out_bw, _, (_, h_bw) = naive.keras_masked_rnn(
        h1, mask, bw.kernel, bw.bias, go_backwards=True, zero_output_for_mask=True
    )
    want = naive.dense(np.concatenate([out_fw, out_bw], -1), dense.kernel, dense.bias, "softmax")
    np.testing.assert_allclose(outputs, want, atol=2e-6, rtol=0)
    np.testing.assert_allclose(s_fw.h, h_fw, atol=2e-6, rtol=0)
    np.testing.assert_allclose(s_bw.h, h_bw, atol=2e-6, rtol=0)
    # Final outputs of a bidirectional layer: both directions' last outputs (Keras' default).
    final = fastlstm.LSTMModel([emb, bottom, (fw, bw)], return_sequences=False)
    got, _ = final(IDS)
    np.testing.assert_allclose(got, np.concatenate([h_fw, h_bw], -1), atol=2e-6, rtol=0)


def test_masked_backward_top_gives_zeros_at_masked_steps():
    cell = basic_cell(UNITS, EMBED, seed=7)
    emb = embedding()
    outputs, (state,) = fastlstm.LSTMModel([emb, fastlstm.Backward(cell)])(IDS)
    want, _, (_, h) = naive.keras_masked_rnn(
        emb.embeddings[IDS], IDS != 0, cell.kernel, cell.bias, go_backwards=True, zero_output_for_mask=True
    )
    np.testing.assert_allclose(outputs, want, atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.h, h, atol=2e-6, rtol=0)


def test_masked_steps_before_the_first_carry_the_initial_state():
    cell = basic_cell(UNITS, EMBED)
    model = fastlstm.LSTMModel([embedding(), cell])
    c0, h0 = weights(8, 5, UNITS), weights(9, 5, UNITS)
    outputs, (state,) = model(IDS, initial_state=[(c0, h0)])
    np.testing.assert_array_equal(outputs[0, :2], h0[0][None].repeat(2, 0))
    np.testing.assert_array_equal(outputs[3], h0[3][None].repeat(6, 0))  # nothing but padding
    np.testing.assert_array_equal(state.h[3], h0[3])
    np.testing.assert_array_equal(outputs[1, 4:], outputs[1, 3][None].repeat(2, 0))


def test_mask_with_sequence_length_masks_the_steps_past_it_too():
    cell = basic_cell(UNITS, EMBED)
    emb = embedding()
    model = fastlstm.LSTMModel([emb, cell], return_sequences=False)
    lengths = np.array([4, 6, 3, 2, 5])
    got, (state,) = model(IDS, sequence_length=lengths)
    mask = (IDS != 0) & (np.arange(6) < lengths[:, None])
    _, last, (c, _) = naive.keras_masked_rnn(emb.embeddings[IDS], mask, cell.kernel, cell.bias)
    np.testing.assert_allclose(got, last, atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.c, c, atol=2e-6, rtol=0)


@pytest.mark.parametrize("time_major", [False, True])
def test_unmasked_embedding_equals_the_model_fed_the_vectors(time_major):
    """Without mask_zero, id 0 is a token, lengths are TF's, and the result is the vectors' model's, bitwise."""
    cell = basic_cell(UNITS, EMBED)
    emb, dense = embedding(mask_zero=False), head(2, "relu")
    lengths = [6, 4, 0, 6, 1]
    ids = IDS.T if time_major else IDS
    got, (state,) = fastlstm.LSTMModel([emb, cell, dense])(ids, lengths, time_major=time_major)
    vectors = emb.embeddings[ids]
    outputs, (want_state,) = fastlstm.LSTMModel([cell])(vectors, lengths, time_major=time_major)
    np.testing.assert_array_equal(got, dense._apply(outputs))
    np.testing.assert_array_equal(state.h, want_state.h)
    ref, _ = naive_run(cell, vectors, lengths, time_major=time_major)
    np.testing.assert_allclose(got, naive.dense(ref, dense.kernel, dense.bias, "relu"), atol=2e-6, rtol=0)


def test_final_output_is_tf_state_h_with_lengths_and_projection():
    """TF 1: tf.layers.dense(state.h) after dynamic_rnn (an LSTMCell with num_proj on top)."""
    bottom = basic_cell(UNITS, EMBED)
    top = fastlstm.LSTMCell(5, num_proj=2)
    top.build(UNITS, seed=3)
    dense = head(1, None, depth=2)
    x = weights(10, 5, 6, EMBED)
    lengths = [6, 3, 0, 1, 5]
    model = fastlstm.LSTMModel([bottom, top, dense], return_sequences=False)
    got, (_, state) = model(x, lengths)
    assert got.shape == (5, 1)
    np.testing.assert_array_equal(got, dense._apply(np.ascontiguousarray(state.h)))


@pytest.mark.parametrize(
    "activation",
    ["tanh", "relu", "linear", "softsign", "elu", "hard_sigmoid", "relu6", "selu", "swish", "softmax"],
)
def test_dense_activations_against_reference(activation):
    dense = fastlstm.Dense(weights(11, 4, 3) * 4, weights(12, 3), activation)
    x = weights(13, 2, 5, 4)
    np.testing.assert_allclose(
        dense._apply(x), naive.dense(x, dense.kernel, dense.bias, activation), atol=2e-6, rtol=0
    )


def test_layer_attributes_and_repr():
    emb, dense = embedding(), head(2, None, bias=False)
    assert (emb.input_dim, emb.output_dim, emb.mask_zero, emb.dtype) == (VOCAB, EMBED, True, np.float32)
    assert (dense.input_size, dense.units, dense.activation, dense.bias) == (UNITS, 2, "linear", None)
    assert not emb.embeddings.flags.writeable and not dense.kernel.flags.writeable
    model = fastlstm.LSTMModel([emb, fastlstm.BasicLSTMCell(UNITS), dense], return_sequences=False)
    assert (model.input_size, model.output_size, model.embedding, model.dense_layers) == (
        EMBED,
        2,
        emb,
        [dense],
    )
    assert "Embedding(input_dim=12, output_dim=3, mask_zero=True)" in repr(model)
    assert repr(model).endswith("], return_sequences=False)")
    model.build(seed=0)
    assert model.built and model.recurrent_layers[0].input_size == EMBED


# -- hostile inputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ids", "error", "message"),
    [
        (np.array([[1, 2], [3, -1]]), ValueError, r"token id -1 at row 1, step 1 is outside .*\[0, 12\)"),
        (np.array([[1, 12], [3, 4]]), ValueError, r"token id 12 at row 0, step 1"),
        (np.array([[1, 2], [3, 2**40]], np.uint64), ValueError, r"token id 1099511627776 at row 1, step 1"),
        (np.array([[1.0, 2.0]]), TypeError, r"integer token ids, got dtype float64"),
        (np.array([[True, False]]), TypeError, r"integer token ids, got dtype bool"),
        (np.array(["a", "b"]), TypeError, r"integer token ids"),
        (np.array([1, 2, 3]), ValueError, r"token ids must be 2-D \[batch, max_time\], got shape \(3,\)"),
        (np.ones((2, 3, 1), np.int64), ValueError, r"must be 2-D"),
        ([[1, 2], [3]], TypeError, r"could not be read"),
    ],
)
def test_bad_ids_are_refused(ids, error, message):
    model = fastlstm.LSTMModel([embedding(), basic_cell(UNITS, EMBED)])
    with pytest.raises(error, match=message):
        model(ids)


def test_bad_ids_time_major_name_the_batch_row():
    model = fastlstm.LSTMModel([embedding(), basic_cell(UNITS, EMBED)])
    with pytest.raises(ValueError, match=r"token id 99 at row 2, step 1"):
        model(np.array([[1, 1, 1], [1, 1, 99]]), time_major=True)


def test_bad_sequence_length_and_state_for_ids():
    model = fastlstm.LSTMModel([embedding(), basic_cell(UNITS, EMBED)])
    with pytest.raises(ValueError, match="exceeds max_time"):
        model(IDS, sequence_length=[7, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="initial state c must have shape"):
        model(IDS, initial_state=[(np.zeros((4, UNITS)), np.zeros((5, UNITS)))])


@pytest.mark.parametrize(
    ("layers", "kwargs", "error", "message"),
    [
        (
            lambda: [fastlstm.BasicLSTMCell(4), embedding()],
            {},
            ValueError,
            r"layers\[1\] is an Embedding; .* only be layers\[0\]",
        ),
        (
            lambda: [head(depth=4), fastlstm.BasicLSTMCell(4)],
            {},
            ValueError,
            r"layers\[1\] is a recurrent layer after the Dense",
        ),
        (lambda: [embedding(), head(depth=EMBED)], {}, ValueError, "at least one recurrent layer"),
        (
            lambda: [fastlstm.BasicLSTMCell(5), head(depth=4)],
            {},
            ValueError,
            r"layers\[1\] \(Dense\) takes inputs of depth 4 but layers\[0\] outputs depth 5",
        ),
        (
            lambda: [embedding(), basic_cell(4, 5)],
            {},
            ValueError,
            r"layers\[1\] takes inputs of depth 5 but layers\[0\] \(Embedding\) outputs depth 3",
        ),
        (
            lambda: [fastlstm.BasicLSTMCell(4, dtype=np.float64), head()],
            {},
            ValueError,
            r"layers\[1\] has dtype float32",
        ),
        (
            lambda: [fastlstm.BasicLSTMCell(4)],
            {"return_sequences": 0},
            TypeError,
            "return_sequences must be True or False",
        ),
    ],
)
def test_model_refuses_layers_that_do_not_fit(layers, kwargs, error, message):
    with pytest.raises(error, match=message):
        fastlstm.LSTMModel(layers(), **kwargs)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: fastlstm.Embedding(np.zeros((0, 3))),
            ValueError,
            r"embeddings must be a non-empty 2-D array",
        ),
        (lambda: fastlstm.Embedding(np.zeros(3)), ValueError, r"non-empty 2-D"),
        (lambda: fastlstm.Embedding([["a"]]), TypeError, "not numeric"),
        (
            lambda: fastlstm.Embedding(np.zeros((2, 3)), mask_zero="yes"),
            TypeError,
            "mask_zero must be True or False",
        ),
        (lambda: fastlstm.Embedding(np.zeros((2, 3)), dtype=np.int32), TypeError, "not supported"),
        (lambda: fastlstm.Dense(np.zeros((2, 3)), np.zeros(2)), ValueError, r"bias must have shape \(3,\)"),
        (
            lambda: fastlstm.Dense(np.zeros((2, 3)), activation="gelu"),
            ValueError,
            "unknown Dense activation 'gelu'",
        ),
        (
            lambda: fastlstm.Dense(np.zeros((2, 3)), activation=np.tanh),
            TypeError,
            "activation must be a name",
        ),
    ],
)
def test_layer_construction_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_inputs_are_never_modified():
    ids = IDS.copy()
    fastlstm.LSTMModel([embedding(), basic_cell(UNITS, EMBED), head()])(ids)
    np.testing.assert_array_equal(ids, IDS)


# -- save / load ----------------------------------------------------------------------------------
@pytest.mark.parametrize("return_sequences", [True, False])
def test_round_trip_keeps_embedding_and_dense_layers(tmp_path, return_sequences):
    model = fastlstm.LSTMModel(
        [embedding(), basic_cell(UNITS, EMBED), head(3, "softmax"), head(2, None, depth=3, bias=False)],
        return_sequences=return_sequences,
    )
    path = tmp_path / "model.npz"
    fastlstm.save(path, model)
    loaded = fastlstm.load(path)
    assert repr(loaded) == repr(model)
    want, _ = model(IDS)
    got, _ = loaded(IDS)
    np.testing.assert_array_equal(got, want)
    emb, dense = loaded.layers[0], loaded.layers[2]
    np.testing.assert_array_equal(emb.embeddings, model.layers[0].embeddings)
    np.testing.assert_array_equal(dense.bias, model.layers[2].bias)
    assert loaded.layers[3].bias is None


def _edited(tmp_path, edit):
    import json

    model = fastlstm.LSTMModel([embedding(), basic_cell(UNITS, EMBED), head()])
    path = tmp_path / "model.npz"
    fastlstm.save(path, model)
    with np.load(path) as archive:
        arrays = dict(archive)
    config = json.loads(str(arrays["fastlstm_config"]))
    edit(config, arrays)
    arrays["fastlstm_config"] = np.array(json.dumps(config))
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c, a: c["layers"][0].update(mask_zero=1), r"layers\[0\].mask_zero must be true or false"),
        (lambda c, a: c["layers"][2].update(activation="gelu"), "unknown Dense activation 'gelu'"),
        (
            lambda c, a: c["layers"][2].update(use_bias=False),
            r"arrays not used by the config: \['layers.2.bias'\]",
        ),
        (lambda c, a: a.pop("layers.0.embeddings"), r"missing array 'layers.0.embeddings'"),
        (
            lambda c, a: a.update({"layers.2.kernel": a["layers.2.kernel"].astype(np.int32)}),
            "has dtype int32",
        ),
        (lambda c, a: c["layers"][2].update(units=3), r"unexpected keys \['units'\]"),
        (lambda c, a: c.update(return_sequences="no"), "return_sequences must be true or false"),
        (
            lambda c, a: a.update({"layers.0.embeddings": np.zeros((2, 2, 2), np.float32)}),
            r"invalid Embedding: embeddings must be a non-empty 2-D array",
        ),
    ],
)
def test_load_refuses_bad_embedding_and_dense_configs(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.load(_edited(tmp_path, edit))


# -- the kernel gathers the rows: bitwise the outputs of the gathered vectors ------------------------
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    ("path", "batch"),
    [("projected", 5), ("gathered", 5), ("split_units", 1), ("serial", 5), ("bfloat16", 5)],
)
def test_token_rows_gathered_by_the_kernel_are_bitwise_the_vectors(monkeypatch, path, batch, reverse):
    from fastlstm import _runner

    cell = basic_cell(UNITS, EMBED)
    weights = cell._weights(np.dtype(np.float32))
    table = embedding()._table
    ids = IDS[:batch]
    lengths = np.array([6, 4, 0, 5, 1][:batch], np.int64)
    c0, h0 = weights_like(batch)
    if path == "gathered":
        monkeypatch.setattr(_runner, "PROJECTED_TABLE_BYTES", 0)
    options = {
        "reverse": reverse,
        "split_units": path == "split_units",
        "serial": path == "serial",
        "precision": "bfloat16" if path == "bfloat16" else "float32",
    }
    got = _runner.run_layer(weights, table, lengths, c0, h0, False, tokens=ids, **options)
    want = _runner.run_layer(weights, np.ascontiguousarray(table[ids]), lengths, c0, h0, False, **options)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    kept = _runner._projected_tables.get(weights)
    assert (kept is not None and kept[0]() is table) == (path in ("projected", "serial"))


def weights_like(batch):
    return weights(20, batch, UNITS), weights(21, batch, UNITS)


def test_projection_follows_new_weights():
    cell = basic_cell(UNITS, EMBED)
    emb = embedding(mask_zero=False)
    model = fastlstm.LSTMModel([emb, cell])
    model(IDS)
    cell.set_weights([w * 0.5 for w in cell.get_weights()])
    got, _ = model(IDS)
    want, _ = fastlstm.LSTMModel([cell])(emb.embeddings[IDS])
    np.testing.assert_array_equal(got, want)


# -- from_tf_checkpoint: embedding_lookup before dynamic_rnn, tf.layers.dense after ----------------
def tf1_variables():
    gen = np.random.default_rng(30)
    return {
        "embedding": gen.uniform(-1, 1, (VOCAB, EMBED)).astype(np.float32),
        "rnn/basic_lstm_cell/kernel": gen.uniform(-0.6, 0.6, (EMBED + UNITS, 4 * UNITS)).astype(np.float32),
        "rnn/basic_lstm_cell/bias": gen.uniform(-0.5, 0.5, 4 * UNITS).astype(np.float32),
        "dense/kernel": gen.uniform(-0.8, 0.8, (UNITS, 3)).astype(np.float32),
        "dense/bias": gen.uniform(-0.5, 0.5, 3).astype(np.float32),
        "logits/kernel": gen.uniform(-0.8, 0.8, (3, 2)).astype(np.float32),
        "dense/kernel/Adam": np.zeros((UNITS, 3), np.float32),
    }


@pytest.mark.parametrize("return_sequences", [True, False])
def test_from_tf_checkpoint_with_embedding_and_dense_scopes(return_sequences):
    variables = tf1_variables()
    model = fastlstm.from_tf_checkpoint(
        variables,
        embedding="embedding",
        dense=["dense", "logits"],
        dense_activations=["relu", "softmax"],
        return_sequences=return_sequences,
    )
    lengths = [6, 4, 0, 3, 1]
    got, _ = model(IDS, sequence_length=lengths)
    x = variables["embedding"][IDS]
    outputs, (_, h) = naive.dynamic_rnn(
        x, variables["rnn/basic_lstm_cell/kernel"], variables["rnn/basic_lstm_cell/bias"], lengths
    )
    hidden = naive.dense(
        outputs if return_sequences else h, variables["dense/kernel"], variables["dense/bias"], "relu"
    )
    want = naive.dense(hidden, variables["logits/kernel"], None, "softmax")
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"embedding": "embeddings"}, ValueError, r"no variable 'embeddings' \(the embedding variable\)"),
        ({"dense": ["head"]}, ValueError, r"no variable 'head/kernel' \(the dense kernel\)"),
        ({"dense": "dense"}, TypeError, "dense must be a list of scopes"),
        (
            {"embedding": "dense/bias"},
            ValueError,
            r"'dense/bias' \(the embedding variable\) has shape \(3,\); expected 2-D",
        ),
        (
            {"dense": ["logits"]},
            ValueError,
            r"\(Dense\) takes inputs of depth 3 but layers\[0\] outputs depth 4",
        ),
        (
            {"dense": ["dense"], "dense_activations": ["relu", None]},
            ValueError,
            "dense_activations has 2 entries",
        ),
    ],
)
def test_from_tf_checkpoint_refuses_bad_embedding_and_dense(kwargs, error, message):
    with pytest.raises(error, match=message):
        fastlstm.from_tf_checkpoint(tf1_variables(), **kwargs)


def test_token_ids_add_no_kernel_specialisation(rng):
    """Ids of any integer dtype and layout, masked or not, projected or gathered: one kernel per dtype."""
    from fastlstm import _kernels, _runner
    from test_specialisations import KERNELS

    for dtype in (np.float32, np.float64):
        table = rng.uniform(-1, 1, (VOCAB, EMBED))
        for mask_zero in (False, True):
            cell = fastlstm.BasicLSTMCell(UNITS, dtype=dtype)
            wide = fastlstm.BasicLSTMCell(128, dtype=dtype)  # one row: the units split over the threads
            model = fastlstm.LSTMModel([fastlstm.Embedding(table, mask_zero, dtype=dtype), (cell, wide)])
            model(IDS.astype(np.int32))
            model(np.asfortranarray(IDS.T).astype(np.uint8), time_major=True)
            model(IDS[:1])
            model(IDS.tolist(), sequence_length=[6, 5, 4, 3, 2])
            weights = cell._weights(np.dtype(dtype))
            state = np.zeros((2, UNITS), dtype)
            ids = IDS[:2].astype(np.int64)
            _runner.run_layer(
                weights, table.astype(dtype), np.array([6, 2]), state, state, False, serial=True, tokens=ids
            )
        # The same kernels fed vectors: the token runs must have compiled nothing else.
        x = rng.standard_normal((2, 3, EMBED)).astype(dtype)
        fastlstm.dynamic_rnn(cell, x)
        fastlstm.dynamic_rnn(wide, x[:1])
        _runner.run_layer(weights, x, np.array([3, 1]), state, state, False, serial=True)
    layer_kernels = [
        "run_block",
        "lstm_layer",
        "lstm_layer_serial",
        "step_unit_part",
        "lstm_layer_split_units",
    ]
    counts = {name: len(KERNELS[name].signatures) for name in layer_kernels}
    assert counts == dict.fromkeys(layer_kernels, 2), counts
    assert len(_kernels.project_table.signatures) == 2
