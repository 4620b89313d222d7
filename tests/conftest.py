"""Shared fixtures: small corpora the tests write themselves (no downloads, no ../shared needed)."""
import atexit
import os
import pathlib
import random
import shutil
import tempfile

import pytest

from training import process_env

# The process-wide settings main.py trains with (the CPU allocator), applied before any test
# module imports TensorFlow, so the tests run as the product does whatever the collection order.
process_env.apply()

WORDS = ("apple bird cloud door eagle forest garden house island jungle kettle lemon mountain "
         "night ocean pepper queen river stone tiger umbrella valley window yellow zebra").split()


def write_copy_corpus(directory, n_train=3000, n_val=60, n_test=60, seed=0, src="en", tgt="de"):
  """A copy task: the target equals the source (3-7 words from a 25-word vocabulary)."""
  rng = random.Random(seed)
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  for split, n in (("train", n_train), ("val", n_val), ("test2016", n_test)):
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) for _ in range(n)]
    for lang in (src, tgt):
      (directory / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
  return str(directory)


@pytest.fixture
def copy_corpus(tmp_path):
  return write_copy_corpus(tmp_path / "copy")


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Prepared data and vocabularies go to a cache of this test session (data/prepare.py), never to
# the user's ~/.cache; subprocesses (main.py) inherit it.
_CACHE = tempfile.mkdtemp(prefix="auxseq-test-cache-")
# Keras imports matplotlib, whose font cache also lives under XDG_CACHE_HOME: keep it where it
# was, or every process would rebuild it (seconds, and ~100 MB of heap churn).
os.environ.setdefault("MPLCONFIGDIR", os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
    "matplotlib"))
os.environ["XDG_CACHE_HOME"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)
