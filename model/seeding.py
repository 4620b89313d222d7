"""Seeds derived from (global seed, component path).

Every component (the model, each head, the combiner) is constructed right after
`keras.utils.set_random_seed(derive_seed(seed, path))`, and Keras layers fix their initializer and
dropout seeds when they are constructed. So a component's initial weights depend only on the
global seed and its own path, never on which other components exist (seed 001: adding a head must
not change any other variable's initial value).
"""
import contextlib
import hashlib

import keras


def derive_seed(seed: int, path: str) -> int:
  """A stable 31-bit seed from (seed, path); the same on every machine and Python run."""
  digest = hashlib.sha256(f"{seed}/{path}".encode("utf-8")).digest()
  return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@contextlib.contextmanager
def component_seed(seed: int, path: str):
  """Seeds Python, NumPy, TF and Keras from (seed, path) for the construction of one component."""
  keras.utils.set_random_seed(derive_seed(seed, path))
  yield
