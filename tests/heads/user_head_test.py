"""docs/adding_a_head.md stays true: its example head file and its example test both run."""
import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs.errors import UserError
from heads.base import HeadContext, safe_mean
from heads.registry import registered_heads
from heads.spec import build_heads, describe_heads, import_head_modules, parse_heads_spec

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "adding_a_head.md"
CONTEXT = HeadContext(vocab_size=20, d_model=8, summary_dim=8, num_layers=2,
                      num_attention_heads=2, label_info={"price": np.array([10.0, 50])}, seed=5)


def _block(marker: str) -> str:
  text = DOC.read_text(encoding="utf-8")
  match = re.search(rf"<!-- {marker}:begin -->\n```python\n(.*?)```\n<!-- {marker}:end -->",
                    text, re.S)
  assert match, f"docs/adding_a_head.md has no {marker} block"
  return match.group(1)


@pytest.fixture(scope="module")
def my_heads_py(tmp_path_factory):
  """The documented example, written outside the repository (once: importing registers it)."""
  path = tmp_path_factory.mktemp("user") / "my_heads.py"
  path.write_text(_block("example"), encoding="utf-8")
  return path


def test_documented_example_test_passes(my_heads_py):
  namespace = {"import_head_modules": import_head_modules, "build_heads": build_heads,
               "parse_heads_spec": parse_heads_spec, "CONTEXT": CONTEXT, "tf": tf,
               "keras": keras, "pytest": pytest, "safe_mean": safe_mean}
  exec(compile(_block("test"), str(DOC), "exec"), namespace)  # pylint: disable=exec-used
  namespace["test_sentence_length_head"](my_heads_py)
  assert registered_heads()["sentence_length"].__module__.startswith("auxseq_user_my_heads")


def test_documented_errors_and_listing(my_heads_py):
  import_head_modules([str(my_heads_py)])  # importing the same file again is a no-op
  for spec, message in [
      ("sentence_length:scale=x",
       "head 'sentence_length': option 'scale' expects a finite number, got 'x'"),
      ("sentence_length:scal=1", "head 'sentence_length' has no option 'scal'; options: weight, "
                                 "grad_scale, scale"),
      ("sentence_length:scale=-1", "head 'sentence_length': scale must be > 0, got -1.0")]:
    with pytest.raises(UserError) as error:
      build_heads(parse_heads_spec(spec), CONTEXT)
    assert str(error.value) == message
  assert "sentence_length: Regresses the source length" in describe_heads()
  assert "    scale = 10.0" in describe_heads()


# A second head written from the docs alone: a per-position tagger on encoder_outputs that
# subtracts a float32 label from its Dense output (under mixed precision before the float32
# head policy this failed with "cannot compute Sub ... bfloat16").
TAGGER = '''
import keras
import tensorflow as tf
from heads.base import Head, LossTerm
from heads.registry import register_head
from model import outputs as out


@register_head("token_parity")
class TokenParityHead(Head):
  """Predicts whether each source token id is odd. Reads encoder_outputs; label from source."""
  reads = (out.ENCODER_OUTPUTS,)
  labels = ("source",)

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.dense = keras.layers.Dense(1, name="dense")
    self.dense.build((None, None, context.d_model))

  def loss(self, outputs, batch, training):
    mask = tf.cast(batch["source"] != 0, tf.float32)
    label = tf.cast(batch["source"] % 2, tf.float32)
    error = (self.dense(outputs[out.ENCODER_OUTPUTS])[..., 0] - label) * mask
    return LossTerm(tf.reduce_sum(error * error), tf.reduce_sum(mask))
'''

BROKEN = '''
import tensorflow as tf
from heads.base import Head, HeadOptions, LossTerm
from heads.registry import register_head


@register_head("broken_for_test")
class BrokenHead(Head):
  """Raises inside its loss."""
  reads = ("encoder_summary",)

  def loss(self, outputs, batch, training):
    return LossTerm(outputs["no_such_output"], tf.constant(1.0))
'''


@pytest.fixture(scope="module")
def tagger_py(tmp_path_factory):
  path = tmp_path_factory.mktemp("user") / "tagger.py"
  path.write_text(TAGGER, encoding="utf-8")
  return path


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_documented_heads_train_under_every_precision(my_heads_py, tagger_py, tmp_path,
                                                      copy_corpus, precision):
  import dataclasses  # pylint: disable=import-outside-toplevel
  from tests_support import tiny_config  # pylint: disable=import-outside-toplevel
  from training.components import build_components  # pylint: disable=import-outside-toplevel
  from training.step import make_train_step  # pylint: disable=import-outside-toplevel
  config = tiny_config(tmp_path / "run", copy_corpus, False, precision=precision)
  config = dataclasses.replace(
      config, heads=parse_heads_spec("sentence_length:weight=0.1;token_parity;price:weight=0.1"),
      head_modules=(str(my_heads_py), str(tagger_py)))
  try:
    c = build_components(config)
    policies = {h.head_name: h.dense.dtype_policy.name for h in c.heads if hasattr(h, "dense")}
    step = make_train_step(c.model, c.heads, c.combiner, c.optimizer)
    batches = iter(c.bundle.train_dataset(512, 0))
    results = [step(next(batches)) for _ in range(3)]
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert policies == {"sentence_length": "float32", "token_parity": "float32"}
  assert c.model.dtype_policy.name == precision  # the model keeps the mixed policy
  for name in ("sentence_length", "token_parity", "translation"):
    values = [float(r[f"loss/{name}"]) for r in results]
    assert np.all(np.isfinite(values)) and values[0] > 0, (name, values)


def test_user_head_error_is_one_line_naming_head_and_file(tmp_path, copy_corpus):
  import dataclasses  # pylint: disable=import-outside-toplevel
  from tests_support import tiny_config  # pylint: disable=import-outside-toplevel
  from training.components import build_components  # pylint: disable=import-outside-toplevel
  broken = tmp_path / "broken.py"
  broken.write_text(BROKEN, encoding="utf-8")
  config = dataclasses.replace(tiny_config(tmp_path / "run", copy_corpus, False),
                               heads=parse_heads_spec("broken_for_test"),
                               head_modules=(str(broken),))
  with pytest.raises(UserError) as error:
    build_components(config)
  assert str(error.value).startswith(f"head 'broken_for_test' ({broken}): KeyError: ")
  assert "\n" not in str(error.value)
