"""Evaluation's tf.functions are traced once per run, not at every validation (issue 19)."""
import dataclasses

from conftest import write_copy_corpus
from evaluation import evaluate as ev
from tests_support import tiny_config
from training.components import build_components


def test_second_validation_traces_nothing(tmp_path):
  config = tiny_config(tmp_path / "w", write_copy_corpus(tmp_path / "c", n_train=300), True)
  config = dataclasses.replace(config, eval=dataclasses.replace(
      config.eval, max_eval_examples=6, eval_batch_size=4, max_decode_length=8))
  c = build_components(config)
  ev.evaluate_split(c, config.eval, "validation")
  functions = list(ev._TRACED[c.model].values())
  assert len(functions) == 2  # beam search and the heads' statistics
  traced = [f.experimental_get_tracing_count() for f in functions]
  assert all(traced)
  ev.evaluate_split(c, config.eval, "validation")
  assert list(ev._TRACED[c.model].values()) == functions
  assert [f.experimental_get_tracing_count() for f in functions] == traced
  # the validation pictures decode with the same function
  assert ev.run_decoder(c.model, config.eval) is functions[0]
