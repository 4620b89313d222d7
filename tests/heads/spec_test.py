"""--heads parsing, typed options, registry rules, weight-0 heads, per-head seeding, user modules."""
import pathlib
import re

import numpy as np
import pytest

import heads  # noqa: F401
from configs.config import HeadSpec
from configs.errors import UserError
from heads import price
from heads.base import Head, HeadContext
from heads.registry import register_head
from heads.spec import build_heads, import_head_modules, make_options, parse_heads_spec

CTX = HeadContext(vocab_size=20, d_model=8, summary_dim=8, num_layers=2, num_attention_heads=2,
                  label_info={"price": np.array([10.0, 50, 90]), "domain": ("a", "b")}, seed=5)
DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "adding_a_head.md"


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
  alone = build_heads(parse_heads_spec("price"), CTX)[-1]
  among = build_heads(parse_heads_spec("domain;length_ratio;price"), CTX)[-1]
  assert len(alone.weights) > 0
  for a, b in zip(alone.weights, among.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_documented_user_head_imports_and_builds(tmp_path):
  text = DOC.read_text(encoding="utf-8")
  code = re.search(r"<!-- example:begin -->\n```python\n(.*?)```\n<!-- example:end -->", text,
                   re.S).group(1)
  path = tmp_path / "my_heads.py"
  path.write_text(code, encoding="utf-8")
  import_head_modules([str(path)])
  import tensorflow as tf
  head = build_heads(parse_heads_spec("sentence_length:scale=8"), CTX)[-1]
  outputs = {"encoder_summary": tf.zeros([2, 8])}
  batch = {"source": tf.constant([[4, 5, 3, 0], [4, 3, 0, 0]])}
  term = head.loss(outputs, batch, training=True)
  # zero summary -> prediction = bias = 0; errors -3/8 and -2/8.
  assert float(term.total) == pytest.approx((3 / 8) ** 2 + (2 / 8) ** 2)
  assert float(term.count) == 2.0


def test_failing_head_module_shows_its_own_error(tmp_path):
  bad = tmp_path / "bad_heads.py"
  bad.write_text("raise RuntimeError('my head is broken')\n", encoding="utf-8")
  with pytest.raises(UserError, match="bad_heads.py' failed: RuntimeError: my head is broken"):
    import_head_modules([str(bad)])
  with pytest.raises(UserError, match="does not exist"):
    import_head_modules([str(tmp_path / "missing.py")])
