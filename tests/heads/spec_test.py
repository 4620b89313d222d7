"""--heads parsing, typed options, registry rules, weight-0 heads, per-head seeding, modules."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import heads  # noqa: F401
from configs.config import HeadSpec
from configs.errors import UserError
from heads import price
from heads.base import Head, HeadContext, LossTerm
from heads.registry import register_head
from heads.spec import (build_heads, describe_heads, import_head_modules, make_options,
                        parse_heads_spec)

CTX = HeadContext(vocab_size=20, d_model=8, summary_dim=8, num_layers=2, num_attention_heads=2,
                  label_info={"price": np.array([10.0, 50, 90]), "domain": ("a", "b")}, seed=5)


def test_parse_spec():
  specs = parse_heads_spec("price:weight=0.3,buckets=5; attention_entropy:layers=0+1,heads=all")
  assert specs == (HeadSpec("price", (("weight", "0.3"), ("buckets", "5"))),
                   HeadSpec("attention_entropy", (("layers", "0+1"), ("heads", "all"))))
  assert parse_heads_spec("") == ()


@pytest.mark.parametrize("spec, message", [
    ("pricey", "unknown head 'pricey'; known heads: .*price"),
    ("price:bukets=5", "head 'price' has no option 'bukets'; options: .*buckets"),
    ("price:buckets=x", "head 'price': option 'buckets' expects an integer, got 'x'"),
    ("price:mode=cheap", "option 'mode' expects one of classification, regression"),
    ("price:hidden=64+y", "option 'hidden' expects a '\\+'-separated list of int"),
    ("price:buckets", "expected opt=value"),
    ("price;price", "more than once"),
    ("price:weight=0.3;:buckets=2", "bad head name in ':buckets=2'"),
    ("price:weight=", "option 'weight' expects a finite number, got ''"),
    ("price:weight=nan", "option 'weight' expects a finite number, got 'nan'"),
    ("price:grad_scale=-inf", "option 'grad_scale' expects a finite number, got '-inf'"),
    ("price:weight=-1", "head 'price': weight must be >= 0 \\(0 removes the head\\), got -1; "
     "to reverse its gradient into the encoder use grad_scale < 0"),
    ("price:batch_norm=maybe", "option 'batch_norm' expects true or false, got 'maybe'"),
    ("attention_entropy:sign=2", "head 'attention_entropy': sign must be 1 or -1, got 2.0"),
    ("attention_entropy:layers=0|1", "option 'layers' expects all, last or indices like 0\\+2"),
    ("attention_entropy:layers=7", "layers index 7 is out of range"),
])
def test_spec_errors_name_head_and_option(spec, message):
  with pytest.raises(UserError, match=message):
    build_heads(parse_heads_spec(spec), CTX)


def test_typed_options():
  options = make_options(price.PriceHead, HeadSpec("price", (("hidden", "64+32"), ("batch_norm",
                                                              "true"), ("edges", "50+100"))))
  assert options.hidden == (64, 32) and options.batch_norm is True and options.edges == (50., 100.)


def test_registry_rejects_duplicates_and_non_heads():
  with pytest.raises(ValueError, match="already registered"):
    @register_head("price")
    class Other(Head):  # noqa: F841
      pass
  with pytest.raises(TypeError, match="needs a Head subclass"):
    register_head("thing")(object)


def test_weight_zero_head_is_not_built_and_translation_is_first():
  built = build_heads(parse_heads_spec("domain:weight=0;price"), CTX)
  assert [h.head_name for h in built] == ["translation", "price"]


def test_head_weights_do_not_depend_on_other_heads():
  """[translation, price] vs [translation, domain, price]: bit-identical price weights."""
  alone = build_heads(parse_heads_spec("price"), CTX)
  among = build_heads(parse_heads_spec("domain;price"), CTX)
  assert [h.head_name for h in among] == ["translation", "domain", "price"]
  assert len(alone[-1].weights) > 0 and len(alone[-1].weights) == len(among[-1].weights)
  for a, b in zip(alone[-1].weights, among[-1].weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # The seed path includes the head's name: same-shaped first layers still differ.
  assert not np.array_equal(among[1].weights[0].numpy(), among[2].weights[0].numpy())
  other_seed = build_heads(parse_heads_spec("price"), dataclasses.replace(CTX, seed=6))[-1]
  assert not np.array_equal(alone[-1].weights[0].numpy(), other_seed.weights[0].numpy())


def test_duplicate_specs_rejected_by_build_heads_too():
  with pytest.raises(UserError, match="'price' more than once"):
    build_heads([HeadSpec("price"), HeadSpec("price", (("weight", "2"),))], CTX)


def test_translation_options_come_from_its_spec():
  built = build_heads(parse_heads_spec("translation:label_smoothing=0.2"), CTX)
  assert len(built) == 1 and built[0].options.label_smoothing == 0.2


def test_bad_activation_is_a_user_error():
  with pytest.raises(UserError, match="head 'price': .*nope"):
    build_heads(parse_heads_spec("price:activation=nope"), CTX)


def test_build_heads_creates_lazy_variables_right_away():
  @register_head("lazy_for_test")
  class LazyHead(Head):  # pylint: disable=unused-variable
    """Creates its Dense in __init__ but leaves it unbuilt. Reads: encoder_summary.
    Label: none. Normaliser: examples."""
    reads = ("encoder_summary",)

    def __init__(self, options, context, **kwargs):
      super().__init__(options, context, **kwargs)
      self.dense = keras.layers.Dense(2)

    def loss(self, outputs, batch, training):
      y = self.dense(outputs["encoder_summary"])
      return LossTerm(tf.reduce_sum(y * y), tf.cast(tf.shape(y)[0], tf.float32))

  head = build_heads(parse_heads_spec("lazy_for_test"), CTX)[-1]
  assert [tuple(w.shape) for w in head.weights] == [(8, 2), (2,)]


def test_describe_heads_lists_heads_options_and_defaults():
  text = describe_heads()
  assert "price: Price-range classifier" in text
  price_block = text.split("price: ")[1].split("\n" + "translation")[0]
  assert "buckets = 5" in price_block and "mode = 'classification'" in price_block
  assert "translation: Token cross-entropy" in text and "label_smoothing = 0.1" in text


def test_failing_head_module_shows_its_own_error(tmp_path):
  bad = tmp_path / "bad_heads.py"
  bad.write_text("raise RuntimeError('my head is broken')\n", encoding="utf-8")
  with pytest.raises(UserError, match="bad_heads.py' failed: RuntimeError: my head is broken"):
    import_head_modules([str(bad)])
  with pytest.raises(UserError, match="does not exist"):
    import_head_modules([str(tmp_path / "missing.py")])
  with pytest.raises(UserError, match="'no_such_pkg.heads' failed: ModuleNotFoundError"):
    import_head_modules(["no_such_pkg.heads"])
