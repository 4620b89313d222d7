"""Process-wide settings that TensorFlow reads once, when it starts (pure Python: call `apply()`
before the first `import tensorflow`; training/native_logs.load_tensorflow and the training
benches do). A setting already in the environment wins, so a user can still turn one off.
"""
import os

# TensorFlow's best-fit-with-coalescing (BFC) allocator for CPU memory too, as on GPUs. Without it
# every tensor comes from glibc's malloc, which hands a freed buffer above its mmap threshold back
# to the system, so each step faults the same buffers in again page by page: ~55,000 minor page
# faults a step at multi30k_transformer's shapes, and 1.07-1.10x the training tokens a second with
# BFC on an AVX2 host (bench/process_env.py, docs/results.md). BFC keeps freed chunks for reuse: the
# process holds its peak tensor memory instead of returning it between steps.
DEFAULTS = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}


def apply() -> None:
  """Sets each of DEFAULTS that the environment does not set already."""
  for name, value in DEFAULTS.items():
    os.environ.setdefault(name, value)
