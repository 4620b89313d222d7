"""The command line: a tiny run end to end, and one `error:` line with status 2 for bad input
(nothing written). Runs `python main.py` in subprocesses, as a user would."""
import json

import pytest

from tests_support import run_main, tiny_args

def test_train_prints_metrics_json_last_then_translate_jsonl(tmp_path, copy_corpus):
  workdir = tmp_path / "w"
  result = run_main(*tiny_args(workdir, copy_corpus, "--train_steps=6"))
  assert result.returncode == 0, result.stderr[-2000:]
  metrics = json.loads(result.stdout.strip().splitlines()[-1])
  for key in ("bleu", "chrf", "ter", "signature", "translation", "price"):
    assert key in metrics, key
  assert "accuracy" in metrics["price"]
  assert json.loads((workdir / "metrics.jsonl").read_text().splitlines()[-1])["bleu"] == \
      metrics["bleu"]
  translated = run_main(*tiny_args(workdir, copy_corpus), "--mode=translate",
                        "--output_format=jsonl", stdin="apple bird cloud\nstone tiger\n")
  assert translated.returncode == 0, translated.stderr[-2000:]
  rows = [json.loads(line) for line in translated.stdout.strip().splitlines()]
  assert [r["source"] for r in rows] == ["apple bird cloud", "stone tiger"]
  assert all("translation" in r and "price/price_bucket" in r for r in rows)


def _assert_user_error(result, *fragments):
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
  assert len(lines) == 1, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  for fragment in fragments:
    assert fragment in lines[0], lines[0]


def _write(path, lines, raw=None):
  path.write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode("utf-8"))


@pytest.fixture
def bad_corpus(tmp_path, copy_corpus):
  return tmp_path, copy_corpus


@pytest.mark.parametrize("case", ["mismatched", "empty", "missing", "utf8"])
def test_bad_parallel_files(tmp_path, copy_corpus, case):
  import shutil
  data = tmp_path / "data"
  shutil.copytree(copy_corpus, data)
  target = data / "train.de"
  expected = {"mismatched": ("train.en has 3000 lines", "train.de has 2999"),
              "empty": ("train.de", "is empty"), "missing": ("train.de", "does not exist"),
              "utf8": ("train.de:3:", "invalid UTF-8")}[case]
  lines = target.read_text(encoding="utf-8").splitlines()
  if case == "mismatched":
    _write(target, lines[:-1])
  elif case == "empty":
    _write(target, [], raw=b"")
  elif case == "missing":
    target.unlink()
    expected = ("no train file for language 'de'",)
  else:
    _write(target, [], raw=("\n".join(lines[:2]) + "\n").encode() + b"caf\xe9\n")
  workdir = tmp_path / "w"
  _assert_user_error(run_main(*tiny_args(workdir, data)), *expected)
  assert not workdir.exists()  # nothing written


@pytest.mark.parametrize("args, fragments", [
    (["--heads=pricey"], ["unknown head 'pricey'", "known heads:"]),
    (["--heads=price:bukets=3"], ["head 'price' has no option 'bukets'"]),
    (["--heads=price:buckets=many"], ["option 'buckets' expects an integer, got 'many'"]),
    (["--heads=domain:label=colour"], ["needs label 'colour'"]),
    (["--combiner=magic"], ["unknown combiner 'magic'", "fixed"]),
    (["--dataset=wmt99"], ["unknown dataset 'wmt99'", "gettext"]),
    (["--model=lstm"], ["flag --model=lstm"]),
    (["--preset=huge"], ["unknown preset 'huge'"]),
    (["--train_steps=ten"], ["flag --train_steps=ten"]),
    (["--head_modules=/nonexistent/x.py"], ["--head_modules=/nonexistent/x.py: no such file"]),
])
def test_bad_flags_and_heads(tmp_path, copy_corpus, args, fragments):
  workdir = tmp_path / "w"
  _assert_user_error(run_main(*tiny_args(workdir, copy_corpus), *args), *fragments)
  assert not workdir.exists()


def test_unwritable_workdir(tmp_path, copy_corpus):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  _assert_user_error(run_main(*tiny_args(blocker / "w", copy_corpus)), "is not writable")


def test_failing_head_module_shows_its_error(tmp_path, copy_corpus):
  module = tmp_path / "mine.py"
  module.write_text("import does_not_exist_anywhere\n")
  _assert_user_error(run_main(*tiny_args(tmp_path / "w", copy_corpus),
                              f"--head_modules={module}"),
                     "ModuleNotFoundError", "does_not_exist_anywhere")


def test_list_heads_and_evaluate_without_training(tmp_path):
  listed = run_main("--list_heads")
  assert listed.returncode == 0 and "price:" in listed.stdout and "buckets = 5" in listed.stdout
  _assert_user_error(run_main("--mode=evaluate", f"--workdir={tmp_path / 'none'}"),
                     "train there first")


def test_diagnose_mode_on_a_healthy_model(tmp_path, copy_corpus):
  result = run_main(*tiny_args(tmp_path / "w", copy_corpus), "--mode=diagnose")
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  assert "diagnosis: 0 error(s)" in result.stdout
  assert "translation: " in result.stdout and "price: " in result.stdout
