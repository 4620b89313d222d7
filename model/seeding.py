"""Seeds derived from (global seed, component path).

Every component (the model, each head, the combiner) is constructed right after
`keras.utils.set_random_seed(derive_seed(seed, path))`, and Keras layers fix their initializer and
dropout seeds when they are constructed. So a component's initial weights depend only on the
global seed and its own path, never on which other components exist (seed 001: adding a head must
not change any other variable's initial value).
"""
import contextlib
import hashlib
import random

import numpy as np
from keras.src.backend.common import global_state
from keras.src.random import seed_generator
from keras.src.utils import rng_utils


def derive_seed(seed: int, path: str) -> int:
  """A stable 31-bit seed from (seed, path); the same on every machine and Python run."""
  digest = hashlib.sha256(f"{seed}/{path}".encode("utf-8")).digest()
  return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@contextlib.contextmanager
def component_seed(seed: int, path: str):
  """Seeds Python, NumPy and Keras from (seed, path) for the construction of one component.

  Like `keras.utils.set_random_seed` but without `tf.random.set_seed`, which in eager mode also
  clears TF's kernel cache and with it the tensorflow-text SentencePiece resources that live
  tf.data pipelines hold (they then fail with NotFoundError).
  """
  value = derive_seed(seed, path)
  global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, value)
  global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
  random.seed(value)
  np.random.seed(value)
  yield
