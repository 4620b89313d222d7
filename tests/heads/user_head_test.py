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
       "head 'sentence_length': option 'scale' expects a number, got 'x'"),
      ("sentence_length:scal=1", "head 'sentence_length' has no option 'scal'; options: weight, "
                                 "grad_scale, scale"),
      ("sentence_length:scale=-1", "head 'sentence_length': scale must be > 0, got -1.0")]:
    with pytest.raises(UserError) as error:
      build_heads(parse_heads_spec(spec), CONTEXT)
    assert str(error.value) == message
  assert "sentence_length: Regresses the source length" in describe_heads()
  assert "    scale = 10.0" in describe_heads()
