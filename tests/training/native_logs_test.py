"""TensorFlow's start-up notices stay off stderr; real errors do not."""
import pathlib
import subprocess
import sys

import pytest

from training import native_logs

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOISE = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796189873.5 7635 port.cc:153] oneDNN custom operations are on. You may see ...
I0000 00:00:1796189873.5 7635 cudart_stub.cc:31] Could not find cuda drivers on your machine.
E0000 00:00:1796189880.3 7635 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error
real problem: disk full
"""


def test_filter_keeps_real_errors_and_cuda_lines_where_a_driver_exists():
  without_gpu = native_logs.filter_lines(NOISE, native_logs.noise_pattern(gpu_driver=False))
  assert without_gpu == "real problem: disk full\n"
  with_gpu = native_logs.filter_lines(NOISE, native_logs.noise_pattern(gpu_driver=True))
  assert "cuInit" in with_gpu and "cudart_stub" in with_gpu and "real problem" in with_gpu
  assert "oneDNN" not in with_gpu


@pytest.mark.skipif(native_logs.has_nvidia_driver(), reason="this machine has an NVIDIA driver")
def test_main_prints_no_cuda_noise_on_a_machine_without_gpus():
  proc = subprocess.run([sys.executable, "main.py", "--list_datasets"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert "parallel_text" in proc.stdout
  for word in ("cuInit", "cuda", "CUDA", "InitializeLog", "oneDNN"):
    assert word not in proc.stderr, proc.stderr


def test_tensorflow_loads_without_keras_optional_packages_which_still_import_afterwards():
  """Start-up (issue 19): Keras' optional matplotlib and scikit-learn helpers are skipped while
  TensorFlow loads, tensorflow_text is left to the modules that use its ops; all three import
  normally afterwards, quietly."""
  code = ("import sys\n"
          "from training import native_logs\n"
          "native_logs.load_tensorflow()\n"
          "print(sorted(m for m in ('sklearn', 'matplotlib', 'tensorflow_text')\n"
          "             if m in sys.modules))\n"
          "import sklearn.linear_model, matplotlib, tensorflow_text\n"
          "print(sklearn.linear_model.LogisticRegression.__name__, matplotlib.__name__,\n"
          "      tensorflow_text.__name__)\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.splitlines() == ["[]", "LogisticRegression matplotlib tensorflow_text"]
  if not native_logs.has_nvidia_driver():
    for word in ("cuInit", "cuda", "CUDA", "InitializeLog", "oneDNN"):
      assert word not in proc.stderr, proc.stderr
