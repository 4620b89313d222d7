"""Start-up of the inference modes (issue 19): seconds from process start to the first translated
line of `main.py --mode=translate`, split into phases, for both engines.

  python bench/startup.py --workdir=W --tries=5 -- --preset=tiny
  python bench/startup.py --workdir=W --tries=5 -- --preset=tiny --engine=ctranslate2

Every try is a fresh process `python main.py --mode=translate --workdir=W ARGS` fed one line on
stdin. A bootstrap (below) runs main.py unchanged and wraps, as their modules load, the functions
that mark the phases; each phase's end is stamped in seconds from process start (the parent's
clock at spawn), and beside it the process's CPU seconds so far ("cpu: ..."; less sensitive to
a busy machine than wall time). "first line" is when the translation reached the parent's stdout
pipe. Phases that a path does not run are absent (e.g. TensorFlow on --engine=ctranslate2 with
an export). The last stdout line is one JSON object: per phase, the median and every try.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (module, attribute path, phase name): the phase ends when the call returns; the decoder that
# make_decoder returns is wrapped too, to stamp its first call (trace + first batch).
WRAPPED = (
    ("flags", "config_from_flags", "flags parsed and validated"),
    ("training.native_logs", "load_tensorflow", "TensorFlow imported"),
    ("training.preflight", "check_registered", "registries checked"),
    ("data", "load_data", "vocabulary and label facts loaded"),
    ("model.seq2seq", "build_model", "model built"),
    ("training.components", "build_components", "components built"),
    ("training.components", "restore_for_inference", "checkpoint restored"),
    ("evaluation.evaluate", "make_decoder", "decoder made"),
    ("evaluation.ctranslate2_engine", "Engine.__init__", "CTranslate2 model loaded"),
)

_BOOTSTRAP = r"""
import atexit, importlib.abc, importlib.machinery, json, sys, time
T0 = float(sys.argv.pop(1)); OUT = sys.argv.pop(1)
WRAPPED = {wrapped!r}
stamps = {{}}

def stamp(name):
  stamps.setdefault(name, round(time.time() - T0, 3))
  stamps.setdefault("cpu: " + name, round(time.process_time(), 3))

def wrap(fn, name):
  def wrapper(*args, **kwargs):
    result = fn(*args, **kwargs)
    stamp(name)
    if name == "decoder made":
      def first(*a, **k):
        out = result(*a, **k)
        stamp("first batch decoded (traced)")
        return out
      return first
    return result
  return wrapper

class Finder(importlib.abc.MetaPathFinder):
  def find_spec(self, fullname, path, target=None):
    if not any(m == fullname for m, _, _ in WRAPPED):
      return None
    spec = importlib.machinery.PathFinder.find_spec(fullname, path)
    if spec is None:
      return None
    exec_module = spec.loader.exec_module
    def patched(module):
      exec_module(module)
      for m, attr, name in WRAPPED:
        if m == fullname:
          owner, _, leaf = attr.rpartition(".")
          target = getattr(module, owner) if owner else module
          if hasattr(target, leaf):
            setattr(target, leaf, wrap(getattr(target, leaf), name))
    spec.loader.exec_module = patched
    return spec

sys.meta_path.insert(0, Finder())
stamp("python started")
atexit.register(lambda: open(OUT, "w").write(json.dumps(stamps)))
sys.path.insert(0, {root!r})
sys.argv[0] = {main!r}
import runpy
runpy.run_path({main!r}, run_name="__main__")
"""


def one_try(workdir: str, args, line: str) -> dict:
  """Phase stamps of one fresh `main.py --mode=translate` process (seconds from spawn)."""
  with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
    out = f.name
  code = _BOOTSTRAP.format(wrapped=WRAPPED, root=ROOT, main=os.path.join(ROOT, "main.py"))
  start = time.time()
  proc = subprocess.Popen(
      [sys.executable, "-c", code, repr(start), out, "--mode=translate", f"--workdir={workdir}",
       *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  proc.stdin.write(line + "\n")
  proc.stdin.close()
  first = proc.stdout.readline()
  first_s = time.time() - start
  rest, err = proc.stdout.read(), proc.stderr.read()
  proc.wait()
  exit_s = time.time() - start
  if proc.returncode or not first:
    raise RuntimeError(f"exit {proc.returncode}: {err[-3000:]}")
  with open(out, encoding="utf-8") as f:
    stamps = json.load(f)
  os.unlink(out)
  stamps.update({"first line on stdout": round(first_s, 3), "process exited": round(exit_s, 3)})
  del rest
  return stamps


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--tries", type=int, default=5)
  parser.add_argument("--line", default="Hello world.")
  parser.add_argument("args", nargs="*", help="more main.py flags (after --)")
  args = parser.parse_args()
  tries = [one_try(args.workdir, args.args, args.line) for _ in range(args.tries)]
  phases = sorted({k for t in tries for k in t}, key=lambda k: statistics.median(
      t[k] for t in tries if k in t))
  result = {k: {"median_s": round(statistics.median(t[k] for t in tries if k in t), 2),
                "tries_s": [t.get(k) for t in tries]} for k in phases}
  for k, v in result.items():
    print(f"{v['median_s']:7.2f}  {k}", file=sys.stderr)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
