"""Inference modes never read the corpus (issue 19): after training, the corpus and the shared
cache of prepared data are moved away, and translate, evaluate on --input_file and export still
run from the workdir alone (vocabulary, stored label facts, checkpoint)."""
import json
import os
import shutil

from tests_support import run_main, tiny_args


def test_translate_evaluate_export_without_corpus_or_cache(tmp_path, copy_corpus):
  workdir, cache = tmp_path / "w", tmp_path / "cache"
  args = tiny_args(workdir, copy_corpus, f"--data_cache_dir={cache}", "--heads=price;domain")
  trained = run_main(*args, "--train_steps=2", "--eval_every=0", "--checkpoint_every=2",
                     "--max_eval_examples=4")
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert "Preparing data from " in trained.stderr
  lines = open(os.path.join(copy_corpus, "val.en"), encoding="utf-8").read().splitlines()[:3]
  (tmp_path / "in.en").write_text("\n".join(lines) + "\n", encoding="utf-8")
  shutil.move(copy_corpus, str(tmp_path / "elsewhere"))
  shutil.move(str(cache), str(tmp_path / "cache_elsewhere"))
  translated = run_main(*args, "--mode=translate", stdin="\n".join(lines) + "\n")
  assert translated.returncode == 0, translated.stderr[-3000:]
  assert len(translated.stdout.strip().splitlines()) == 3
  evaluated = run_main(*args, "--mode=evaluate", f"--input_file={tmp_path / 'in.en'}",
                       f"--reference_file={tmp_path / 'in.en'}")
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  assert "bleu" in json.loads(evaluated.stdout.strip().splitlines()[-1])
  exported = run_main(*args, "--mode=export")
  assert exported.returncode == 0, exported.stderr[-3000:]
  for result in (translated, evaluated, exported):
    assert "Preparing" not in result.stderr
  assert not os.path.exists(cache) and not os.path.exists(copy_corpus)
