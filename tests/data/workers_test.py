"""Multi-worker data (issue 19): the chief prepares the data and the vocabulary, the other worker
waits for the chief's completion markers and reads the same files, so both see the same ids."""
import json
import os
import subprocess
import sys
import time

from conftest import write_copy_corpus

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_worker.py")


def _start(index, corpus, cache, workdir):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(
      {"cluster": {"worker": ["localhost:1", "localhost:2"]},
       "task": {"type": "worker", "index": index}}))
  return subprocess.Popen([sys.executable, WORKER, corpus, cache, workdir], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_other_worker_waits_for_the_chief_and_sees_identical_ids(tmp_path):
  corpus = write_copy_corpus(tmp_path / "c", n_train=2000)
  cache = str(tmp_path / "cache")
  other = _start(1, corpus, cache, str(tmp_path / "w-worker1"))  # first: it must wait
  time.sleep(3)
  assert other.poll() is None and not os.path.exists(cache)  # waiting, preparing nothing
  chief = _start(0, corpus, cache, str(tmp_path / "w"))
  results = []
  for proc in (chief, other):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    results.append((json.loads(out.strip().splitlines()[-1]), err))
  (chief_ids, chief_log), (other_ids, other_log) = results
  assert chief_ids.pop("chief") and not other_ids.pop("chief")
  assert chief_ids == other_ids
  assert "Preparing data from " in chief_log and "Preparing" not in other_log
  assert len([n for n in os.listdir(cache) if not n.startswith(".")]) == 2  # data + vocabulary
