"""Preparation streams (issue 19): under a process memory limit that loading the corpus into
Python rows exceeds, preparing it still succeeds. A regression to loading everything fails here.

The limit is on address space (RLIMIT_AS), set after the imports, in a fresh process: 60 MB over
what the process already maps. Measured on the 300,000 pairs below (VmPeak growth,
/tmp-style probe): loading the rows whole takes 118 MB, streaming preparation 24 MB.
"""
import random
import subprocess
import sys

import pytest

from tests_support import ROOT

HEADROOM_MB = 60
_CHILD = r"""
import os, resource, sys
sys.path.insert(0, {root!r})
from data import prepare as prep, sources
# Warm-up on a tiny corpus, so that lazy imports and caches are in place before the limit.
sources.read_parallel_text({small!r}, "en", "de")
prep.prepare("parallel_text", {small!r}, "en", "de", {cache!r} + "_warm", log=lambda line: None)
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
limit = size + {headroom} * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
  if {whole}:
    sources.read_parallel_text({corpus!r}, "en", "de")
  else:
    prep.prepare("parallel_text", {corpus!r}, "en", "de", {cache!r}, log=lambda line: None)
except MemoryError:
  os.write(1, b"MemoryError\n")
  os._exit(3)
os.write(1, b"ok\n")
os._exit(0)
"""


def _corpus(directory, pairs=300_000):
  rng = random.Random(0)
  words = [f"{a}{b}{c}" for a in "bdgkmpst" for b in "aeiou" for c in "lnrs"]
  directory.mkdir()
  for split, n in (("train", pairs), ("val", 100), ("test", 100)):
    lines = [" ".join(rng.choices(words, k=rng.randint(8, 16))) for _ in range(n)]
    for lang in ("en", "de"):
      (directory / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
  return str(directory)


def _run(corpus, small, cache, whole):
  code = _CHILD.format(root=ROOT, headroom=HEADROOM_MB, whole=whole, corpus=corpus, small=small,
                       cache=cache)
  return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=600)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_preparation_fits_where_loading_everything_does_not(tmp_path):
  corpus, small = _corpus(tmp_path / "c"), _corpus(tmp_path / "small", pairs=500)
  whole = _run(corpus, small, str(tmp_path / "cache0"), True)
  assert whole.returncode == 3 and "MemoryError" in whole.stdout, (whole.stdout, whole.stderr[-500:])
  streamed = _run(corpus, small, str(tmp_path / "cache"), False)
  assert streamed.returncode == 0 and "ok" in streamed.stdout, streamed.stderr[-2000:]
  assert len(list((tmp_path / "cache").iterdir())) == 1
