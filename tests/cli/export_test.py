"""--mode=export: a SavedModel that a fresh process with only TensorFlow (+ tensorflow-text for
the in-graph SentencePiece ops) loads and that translates exactly like --mode=translate."""
import json
import os
import subprocess
import sys

from tests_support import run_main, tiny_args

LOADER = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops used inside the graph
loaded = tf.saved_model.load(sys.argv[1])
out = loaded.signatures["serving_default"](tf.constant(sys.argv[2:]))
print(json.dumps({k: v.numpy().tolist() if v.dtype != tf.string else
                  [s.decode("utf-8") for s in v.numpy()] for k, v in out.items()}))
"""


def test_export_matches_translate(tmp_path, copy_corpus):
  workdir = tmp_path / "w"
  args = tiny_args(workdir, copy_corpus, "--train_steps=30")
  assert run_main(*args).returncode == 0
  sentences = ["apple bird cloud door", "stone tiger umbrella", "river"]
  translated = run_main(*args, "--mode=translate", "--engine=tensorflow",
                        stdin="\n".join(sentences) + "\n")
  assert translated.returncode == 0, translated.stderr[-2000:]
  exported = run_main(*args, "--mode=export")
  assert exported.returncode == 0, exported.stderr[-2000:]
  path = json.loads(exported.stdout.strip().splitlines()[-1])["path"]
  assert not [p for p in os.listdir(os.path.dirname(path)) if p.startswith(".export-")]
  loaded = subprocess.run([sys.executable, "-c", LOADER, path, *sentences], capture_output=True,
                          text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
  assert loaded.returncode == 0, loaded.stderr[-2000:]
  outputs = json.loads(loaded.stdout.strip().splitlines()[-1])
  assert outputs["translation"] == translated.stdout.split("\n")[:-1]  # one line each
  assert len(outputs["price/price_bucket"]) == 3
