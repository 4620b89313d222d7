"""Slow soak (issue 8): training with evaluation and checkpoint cycles for AUXSEQ_SOAK_MINUTES
(default 30). Memory must not grow and nothing may leak into the workdir.

RSS of the training process is sampled from /proc every few seconds; the baseline is the
median over the second tenth of the run (after tracing and the first evaluations), the end
value the median over the last tenth. Run with `./test.sh -m slow tests/training/soak_test.py`.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import pytest

from tests_support import ROOT, tiny_args


def _rss_mb(pid: int) -> float:
  with open(f"/proc/{pid}/status", encoding="utf-8") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024.0
  return 0.0


@pytest.mark.slow
def test_soak_memory_flat_and_workdir_clean(tmp_path, copy_corpus):
  minutes = float(os.environ.get("AUXSEQ_SOAK_MINUTES", "30"))
  workdir = tmp_path / "soak"
  args = tiny_args(workdir, copy_corpus, "--train_steps=100000000", f"--max_minutes={minutes}",
                   "--eval_every=200", "--checkpoint_every=50", "--log_every=100")
  proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  samples = []
  start = time.time()
  while proc.poll() is None:
    try:
      samples.append((time.time() - start, _rss_mb(proc.pid)))
    except OSError:
      break
    time.sleep(5)
  stdout = proc.stdout.read()
  assert proc.returncode == 0
  final = json.loads(stdout.strip().splitlines()[-1])
  total = samples[-1][0]
  early = [m for t, m in samples if 0.1 * total <= t < 0.2 * total]
  late = [m for t, m in samples if t >= 0.9 * total]
  baseline, end = statistics.median(early), statistics.median(late)
  print(f"soak {minutes} min: step {final['step']}, RSS {baseline:.0f} MB -> {end:.0f} MB")
  assert end <= baseline * 1.10 + 50, (baseline, end)
  # Nothing leaks: only the run's own files; at most keep_checkpoints (5) regular checkpoints.
  names = set(os.listdir(workdir))
  assert names <= {"checkpoints", "best", "tensorboard", "tfds", "config.json", "metrics.jsonl",
                   "validation.hyp", "test.hyp", "vocab", "data_stats.json",
                   "data_info.json"} | {
                       n for n in names if n.startswith("spm")}, names
  index_files = [n for n in os.listdir(workdir / "checkpoints") if n.endswith(".index")]
  assert len(index_files) <= 5
  leftovers = [os.path.join(d, f) for d, _, files in os.walk(workdir) for f in files
               if ".tmp" in f or f.endswith("_temp")]
  assert not leftovers, leftovers
