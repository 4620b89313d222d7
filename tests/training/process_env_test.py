"""training/process_env.py: TensorFlow's BFC allocator serves CPU memory in the processes main.py
starts; a user's own setting wins."""
import os
import subprocess
import sys

from tests_support import ROOT
from training import process_env

# Allocator statistics exist only under the BFC allocator: without it get_memory_info raises
# ValueError ("Allocator stats not available").
_PROBE = ("import tensorflow as tf\n"
          "x = tf.matmul(tf.ones([256, 256]), tf.ones([256, 256]))\n"
          "try:\n"
          "  print('bfc', tf.config.experimental.get_memory_info('CPU:0')['peak'] > 0)\n"
          "except ValueError:\n"
          "  print('malloc')\n")


def _probe(env_value):
  env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
  if env_value is not None:
    env["TF_CPU_ALLOCATOR_USE_BFC"] = env_value
  code = "from training import native_logs\nnative_logs.load_tensorflow()\n" + _PROBE
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  return proc.stdout.strip()


def test_tensorflow_as_main_loads_it_allocates_cpu_memory_with_bfc():
  assert _probe(None) == "bfc True"


def test_a_users_setting_wins():
  assert _probe("false") == "malloc"


def test_apply_sets_only_what_is_unset(monkeypatch):
  monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)
  process_env.apply()
  assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
  monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "false")
  process_env.apply()
  assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "false"
