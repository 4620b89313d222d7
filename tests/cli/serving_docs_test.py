"""docs/serving.md's two loaders, extracted from the document and run as-is in fresh processes on
a tiny trained model's exports: they give what `--mode=translate` gives, with head predictions
from the SavedModel; without `import tensorflow_text` the SavedModel does not load."""
import json
import os
import re
import subprocess
import sys

import pytest

from tests_support import ROOT, run_main, tiny_args

pytest.importorskip("ctranslate2")

SENTENCES = ["apple bird cloud door", "stone tiger umbrella", "river"]


def _snippet(name: str) -> str:
  text = open(os.path.join(ROOT, "docs", "serving.md"), encoding="utf-8").read()
  block = re.search(rf"<!-- {name}:begin -->\n```python\n(.*?)```\n<!-- {name}:end -->", text,
                    re.S)
  assert block, f"docs/serving.md has no {name} block"
  return block.group(1)


def _run(script_path, *args):
  return subprocess.run([sys.executable, str(script_path), *args], capture_output=True, text=True,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300, cwd="/")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  from conftest import write_copy_corpus
  root = tmp_path_factory.mktemp("serving")
  # A short output limit: the stand-alone CTranslate2 script applies max_decode_length alone,
  # the engine also 2 * source + 10 (docs/serving.md); at 12 both limits are the same.
  args = tiny_args(root / "w", write_copy_corpus(root / "copy"), "--max_decode_length=12")
  assert run_main(*args, "--train_steps=30").returncode == 0
  for extra in ([], ["--export_format=ctranslate2"]):
    result = run_main(*args, "--mode=export", *extra)
    assert result.returncode == 0, result.stderr[-2000:]
  return root, args


def _translate(args, *extra):
  result = run_main(*args, "--mode=translate", *extra, stdin="\n".join(SENTENCES) + "\n")
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout.splitlines()


def test_savedmodel_loader_as_documented(exported, tmp_path):
  root, args = exported
  script = tmp_path / "load_savedmodel.py"
  script.write_text(_snippet("savedmodel"), encoding="utf-8")
  result = _run(script, str(root / "w" / "export"), *SENTENCES)
  assert result.returncode == 0, result.stderr[-2000:]
  rows = [json.loads(line) for line in result.stdout.splitlines()]
  assert [r["translation"] for r in rows] == _translate(args, "--engine=tensorflow")
  labels = json.load(open(root / "w" / "export" / "labels.json", encoding="utf-8"))
  assert "domain/domain" not in labels  # the copy corpus has no domains: indices stay numbers
  for row in rows:
    assert row["domain/domain"] == 0
    assert 0 <= row["price/price_bucket"] <= len(labels["price/price_bucket"]["edges"])


def test_savedmodel_without_tensorflow_text_fails_as_documented(exported, tmp_path):
  root, _ = exported
  script = tmp_path / "no_text.py"
  script.write_text(_snippet("savedmodel").replace("import tensorflow_text", "pass  #"),
                    encoding="utf-8")
  result = _run(script, str(root / "w" / "export"), *SENTENCES)
  assert result.returncode != 0
  assert "Op type not registered 'SentencepieceOp'" in result.stderr


def test_ctranslate2_script_as_documented(exported, tmp_path):
  root, args = exported
  script = tmp_path / "translate_ct2.py"
  script.write_text(_snippet("ctranslate2"), encoding="utf-8")
  result = _run(script, str(root / "w" / "ctranslate2"), *SENTENCES)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "tensorflow" not in _snippet("ctranslate2")
  assert result.stdout.splitlines() == _translate(args, "--engine=ctranslate2")


def test_labels_json_names_classes_and_price_buckets():
  from types import SimpleNamespace
  import tensorflow as tf
  from evaluation.export import label_meanings
  domain = SimpleNamespace(head_name="domain", context=SimpleNamespace(
      label_info={"domain": ("gimp", "vim")}))
  price = SimpleNamespace(head_name="price", edges=tf.constant([50.0, 120.0]),
                          context=SimpleNamespace(label_info={"domain": ()}))
  assert label_meanings([domain, price]) == {"domain/domain": ["gimp", "vim"],
                                             "price/price_bucket": {"edges": [50.0, 120.0]}}
