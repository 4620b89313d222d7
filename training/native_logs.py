"""Keeps TensorFlow's start-up noise off stderr (pure Python; used before TensorFlow loads).

Importing TensorFlow prints, through its C++ logger and before `TF_CPP_MIN_LOG_LEVEL` takes
effect, lines such as "Could not find cuda drivers on your machine" and, on a machine without a
GPU, "failed call to cuInit: ... (303)". They read like failures and are not. `quiet_start()`
sends file descriptor 2 to a temporary file while TensorFlow loads and finds its devices, then
restores it and replays every line except the known start-up notices, so real errors still show.
"""
import contextlib
import os
import re
import sys
import tempfile

# Start-up notices, not problems. CUDA lines are dropped only where no NVIDIA driver exists:
# on a GPU machine a failed cuInit is a real problem and stays visible.
_ALWAYS = (r"All log messages before absl::InitializeLog\(\) is called",
           r"oneDNN custom operations are on", r"cpu_feature_guard\.cc",
           r"^To enable the following instructions: ", r"rebuild TensorFlow with the appropriate")
_WITHOUT_GPU = (r"cudart_stub\.cc", r"cuInit", r"cuda_(platform|driver|executor)\.cc",
                r"Could not find cuda drivers", r"TF-TRT Warning")


def has_nvidia_driver() -> bool:
  return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidiactl")


def noise_pattern(gpu_driver: bool) -> re.Pattern:
  return re.compile("|".join(_ALWAYS if gpu_driver else _ALWAYS + _WITHOUT_GPU))


def filter_lines(text: str, pattern: re.Pattern) -> str:
  return "".join(line for line in text.splitlines(keepends=True) if not pattern.search(line))


@contextlib.contextmanager
def quiet_start():
  """Within the block, native stderr is captured; afterwards everything but the notices above is
  written back. Python-level errors raised inside the block are unaffected."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile(mode="w+b") as capture:
    os.dup2(capture.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      kept = filter_lines(capture.read().decode("utf-8", "replace"),
                          noise_pattern(has_nvidia_driver()))
      if kept:
        sys.stderr.write(kept)
        sys.stderr.flush()


# Packages Keras imports only for optional helpers, and skips when the import fails:
# matplotlib for its plotting utilities (~0.6 s, mostly `matplotlib.pyplot`) and scikit-learn
# for its `keras.wrappers` estimators (~0.6-1.2 s with scipy; `python -X importtime`).
_OPTIONAL_FOR_KERAS = ("matplotlib", "sklearn")


@contextlib.contextmanager
def _without_optional_packages():
  """Within the block `import matplotlib` and `import sklearn` fail, so Keras (imported by
  TensorFlow) skips its optional helpers. auxseq's own plots (evaluation/plots.py) and the
  benches' scikit-learn baselines import them afterwards, normally. A package already imported
  is left alone."""
  blocked = [name for name in _OPTIONAL_FOR_KERAS if name not in sys.modules]
  for name in blocked:
    sys.modules[name] = None
  try:
    yield
  finally:
    for name in blocked:
      if sys.modules.get(name, 0) is None:
        del sys.modules[name]


def load_tensorflow() -> None:
  """Imports TensorFlow and lets it find its devices, quietly. tensorflow_text (~0.3 s) is not
  imported here: the modules whose graphs use its ops (data.tokenizer, data.pipeline,
  evaluation.export) import it themselves, and translating with a checkpoint needs none. The
  process-wide settings of training/process_env.py (the CPU allocator) are applied first."""
  from training import process_env  # pylint: disable=import-outside-toplevel
  process_env.apply()
  with quiet_start(), _without_optional_packages():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.list_physical_devices()
