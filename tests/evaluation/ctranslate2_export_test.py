"""The CTranslate2 spec reproduces our Transformer: CTranslate2's per-token log-probabilities of a
forced target (score_batch) equal TensorFlow's teacher-forced log-softmax, for tied and untied
embeddings, with non-trivial LayerNorm parameters and sources of different lengths."""
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from configs.config import ModelConfig
from configs.errors import UserError
from evaluation import ctranslate2_export as cx
from model.seq2seq import build_model

ctranslate2 = pytest.importorskip("ctranslate2")

VOCAB = [f"p{i}" for i in range(30)]
VOCAB[:4] = ["<pad>", "<unk>", "<s>", "</s>"]
SOURCES = [[5, 6, 7, 8, 3], [9, 10, 3], [11, 3]]
TARGETS = [[12, 13, 14], [15, 16, 17, 18, 19], [20]]


def _model(tied: bool, target_vocab: int = 30):
  config = ModelConfig(d_model=16, num_layers=2, num_heads=4, ffn_dim=24, dropout=0.0,
                       tie_embeddings=tied)
  tf.keras.utils.set_random_seed(3)
  model = build_model(config, 30, target_vocab)
  model.decode({"target_in": tf.constant([[2, 5]])}, model.encode(tf.constant([[5, 3]])))
  rng = np.random.default_rng(0)
  for v in model.variables:  # LayerNorm gamma 1 / beta 0 would hide a swapped or missing norm
    if "norm" in v.path:
      v.assign(rng.normal(1.0 if v.path.endswith("gamma") else 0.0, 0.3, v.shape))
  return model


def _tf_log_probs(model, source, target):
  """Log-probability of each target token and of the final EOS (teacher forcing)."""
  encoded = model.encode(tf.constant([source]), training=False)
  target_in = tf.constant([[2] + target])
  logits = model.decode({"target_in": target_in}, encoded, training=False)["logits"][0]
  log_probs = tf.nn.log_softmax(logits).numpy()
  return [float(log_probs[i, t]) for i, t in enumerate(target + [3])]


@pytest.mark.parametrize("tied", [True, False])
def test_ctranslate2_scores_equal_tensorflow(tmp_path, tied):
  model = _model(tied)
  spec = cx.build_spec(model, VOCAB, VOCAB)
  spec.optimize(quantization="float32")
  spec.save(str(tmp_path))
  translator = ctranslate2.Translator(str(tmp_path), device="cpu", intra_threads=1)
  results = translator.score_batch([[VOCAB[i] for i in s] for s in SOURCES],
                                   [[VOCAB[i] for i in t] for t in TARGETS])
  for source, target, result in zip(SOURCES, TARGETS, results):
    assert result.tokens == [VOCAB[i] for i in target] + ["</s>"]
    np.testing.assert_allclose(result.log_probs, _tf_log_probs(model, source, target),
                               rtol=1e-4, atol=2e-4)


def test_int8_scores_stay_close(tmp_path):
  """int8 weights change the numbers a little, not the model: within 0.05 nats per token here,
  with the compute type the engine picks for this CPU (float32 arithmetic where the int8
  kernels saturate: 1.88 nats off there without it)."""
  from evaluation.ctranslate2_engine import compute_type
  from training.hardware import cpu_info
  model = _model(True)
  spec = cx.build_spec(model, VOCAB, VOCAB)
  spec.optimize(quantization="int8")
  spec.save(str(tmp_path))
  translator = ctranslate2.Translator(str(tmp_path), device="cpu", intra_threads=1,
                                      compute_type=compute_type("int8", cpu_info()))
  result = translator.score_batch([[VOCAB[i] for i in SOURCES[0]]],
                                  [[VOCAB[i] for i in TARGETS[0]]])[0]
  reference = _tf_log_probs(model, SOURCES[0], TARGETS[0])
  assert np.max(np.abs(np.array(result.log_probs) - reference)) < 0.05


def test_int8_computes_in_float32_only_on_x86_without_vnni():
  from evaluation.ctranslate2_engine import compute_type
  avx2 = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n"
  assert compute_type("int8", avx2) == "float32"
  assert compute_type("int8_float32", avx2) == "float32"
  assert compute_type("int8", avx2.replace("avx2", "avx2 avx512f avx512_vnni")) == "default"
  assert compute_type("int8", avx2.replace("avx2", "avx2 avx_vnni")) == "default"
  assert compute_type("int8", "Features\t: fp asimd\n") == "default"  # ARM: no x86 flags
  assert compute_type("float32", avx2) == "default"


def test_position_table_is_ours_not_ctranslate2s(tmp_path):
  """Our table interleaves sin/cos per channel pair; CTranslate2's built-in one does not."""
  spec = cx.build_spec(_model(True), VOCAB, VOCAB)
  table = spec.encoder.position_encodings.encodings.numpy()  # validate() wrapped the array
  assert table.shape == (cx.POSITION_TABLE_LENGTH, 16)
  np.testing.assert_allclose(table[1, :2], [np.sin(1.0), np.cos(1.0)], atol=1e-6)


def test_rnn_is_refused_with_one_line():
  from configs.config import Config
  config = dataclasses.replace(Config(), model=ModelConfig(model="rnn"))
  with pytest.raises(UserError, match="--model=transformer only, got --model=rnn"):
    cx.check_exportable(config)


def test_an_export_is_current_until_the_weights_to_restore_change(tmp_path):
  """weights_fingerprint reads the checkpoint state files, --average_last and EMA: a new
  checkpoint (or another averaging) makes the export stale and names it; RNN exports nothing."""
  from configs.config import Config, EvalConfig
  from evaluation import ctranslate2_modes as modes
  config = dataclasses.replace(Config(), workdir=str(tmp_path))
  (tmp_path / "checkpoints").mkdir()
  state = tmp_path / "checkpoints" / "checkpoint"
  state.write_text('model_checkpoint_path: "ckpt-200"\n')
  ct2 = tmp_path / "ctranslate2"
  ct2.mkdir()
  assert not modes.export_is_current(config, str(ct2))  # no manifest
  (ct2 / "auxseq.json").write_text(json.dumps(
      {"checkpoint": "step 200", "weights": modes.weights_fingerprint(config)}))
  assert modes.export_is_current(config, str(ct2))
  assert modes.stale_export_note(config, str(ct2)) == ""
  averaged = dataclasses.replace(config, eval=EvalConfig(average_last=5))
  assert not modes.export_is_current(averaged, str(ct2))
  state.write_text('model_checkpoint_path: "ckpt-300"\n')
  assert not modes.export_is_current(config, str(ct2))
  note = modes.stale_export_note(config, str(ct2))
  assert "the weights of step 200" in note and "export again" in note
  rnn = dataclasses.replace(config, model=ModelConfig(model="rnn"))
  assert modes.export_after_training(type("C", (), {"config": rnn})()) == ""
