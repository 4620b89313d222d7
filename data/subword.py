"""Subword regularisation (Kudo 2018, "Subword Regularization", arXiv:1804.10959): each
training sentence is segmented by a *sample* from the unigram model's segmentations instead of
the best one, a fresh sample every time the sentence is read.

Why not `tf_text.SentencepieceTokenizer(alpha=..., nbest_size=...)`: its sampling draws from
sentencepiece's thread-local generator, seeded from `std::random_device` and shared by whatever
tf.data thread runs the op; it takes no seed, so its samples differ from run to run and cannot
be repeated after a restart. Here every draw comes from a generator seeded by (run seed,
position of the example in the training stream, side), so the same seed and step give the same
samples, also after resuming from a checkpoint (the position is part of the iterator state).

The algorithms are sentencepiece's own (`SentencePieceProcessor::SampleEncode`):
  * nbest < 0: forward-filtering backward-sampling over the whole lattice of the normalised
    sentence, P(segmentation) proportional to P_unigram(segmentation) ** alpha;
  * nbest > 1: one of the `nbest` best segmentations (sentencepiece's deterministic n-best),
    drawn with probability proportional to P_unigram ** alpha.
The lattice is built as sentencepiece builds it: every vocabulary piece matching at a position,
and an unknown node (score min_score - 10) for a character no single piece covers; consecutive
unknown characters come out as one UNK id, as in `encode`.

A sentence's filtered lattice does not depend on the draw, and small corpora read each sentence
tens of times, so the full-lattice sampler keeps it for up to `CACHE_SENTENCES` distinct
sentences (a few KB each, packed in arrays); a cached sentence then costs only the backward
walk, and its samples are the uncached ones bit for bit. Past the cap (a corpus of millions of
sentences) nothing more is kept: memory stays bounded and the rest is computed per read.
"""
import array
import bisect
import math
from typing import Dict, List, NamedTuple, Tuple

import numpy as np
import sentencepiece as spm

from data.special_ids import UNK

UNK_PENALTY = 10.0  # sentencepiece's kUnkPenalty: unknown nodes score min_score - 10
SOURCE, TARGET = 0, 1  # the `side` of a draw: source and target never share a random stream
CACHE_SENTENCES = 50_000  # filtered lattices kept per sampler (Multi30k's 29,000 fit; ~3 KB each)


class _Filtered(NamedTuple):
  """A sentence's lattice after forward filtering, packed: the nodes ending at character e are
  [offsets[e], offsets[e + 1]) with their begin, piece id and the running sum of their backward
  probabilities (the last one is the group's total)."""
  offsets: array.array
  begins: array.array
  ids: array.array
  cumulative: array.array


class SubwordSampler:
  """Seeded segmentation samples of one sentencepiece unigram model.

  Args:
    model_path: the sentencepiece model file.
    alpha: inverse temperature (> 0): P(segmentation) ** alpha; large values approach the
      best segmentation, small ones approach uniform.
    nbest: -1 = sample from the full lattice; n > 1 = sample from the n best segmentations.
  """

  def __init__(self, model_path: str, alpha: float, nbest: int):
    if not alpha > 0 or nbest in (0, 1) or nbest < -1:
      raise ValueError(f"SubwordSampler needs alpha > 0 and nbest -1 or > 1, got alpha={alpha}, "
                       f"nbest={nbest}")
    with open(model_path, "rb") as f:
      self._sp = spm.SentencePieceProcessor(model_proto=f.read())
    self.alpha, self.nbest = float(alpha), int(nbest)
    size = self._sp.get_piece_size()
    special = {i for i in range(size) if self._sp.is_control(i) or self._sp.is_unknown(i)
               or self._sp.is_unused(i) or self._sp.is_byte(i)}
    self._pieces: Dict[str, Tuple[int, float]] = {
        self._sp.id_to_piece(i): (i, self._sp.get_score(i)) for i in range(size)
        if i not in special}
    # Every prefix of a piece: the lattice stops extending a match that no piece continues.
    self._prefixes = {p[:k] for p in self._pieces for k in range(1, len(p) + 1)}
    self._unk_score = min(s for _, s in self._pieces.values()) - UNK_PENALTY
    self._scores = [self._sp.get_score(i) for i in range(size)]
    self._cache: Dict[str, _Filtered] = {}
    self._cache_cap = CACHE_SENTENCES  # read when built: a bench can build an uncached sampler

  def __call__(self, text: bytes, seed, index, side) -> np.ndarray:
    """int32 [N] ids of one sample for `text` (UTF-8), seeded by (seed, index, side)."""
    rng = np.random.default_rng([int(seed), int(index), int(side)])
    text = np.asarray(text, object).item()  # bytes (in tf.data) or a 0-d array (eagerly)
    return np.asarray(self.sample(text.decode("utf-8"), rng), np.int32)

  def sample(self, text: str, rng: np.random.Generator) -> List[int]:
    if self.nbest > 1:
      return self._sample_nbest(text, rng)
    filtered = self._cache.get(text)
    if filtered is None:
      filtered = self._filter(self._sp.normalize(text))
      if len(self._cache) < self._cache_cap:
        self._cache[text] = filtered
    return _walk(filtered, rng)

  def _lattice(self, normalized: str) -> List[list]:
    """ends[e]: (begin, id, alpha * score) of every node ending at character e."""
    n = len(normalized)
    ends: List[list] = [[] for _ in range(n + 1)]
    for begin in range(n):
      single = False
      for end in range(begin + 1, n + 1):
        text = normalized[begin:end]
        if text not in self._prefixes:
          break
        hit = self._pieces.get(text)
        if hit is not None:
          ends[end].append((begin, hit[0], self.alpha * hit[1]))
          single = single or end == begin + 1
      if not single:
        ends[begin + 1].append((begin, UNK, self.alpha * self._unk_score))
    return ends

  def _filter(self, normalized: str) -> _Filtered:
    """Forward filtering (log-sum of alpha-scaled path scores up to each character), and the
    probability of each node ending at a boundary given that boundary, for the backward walk."""
    ends = self._lattice(normalized)
    forward = [0.0] * len(ends)
    for end in range(1, len(ends)):
      forward[end] = _log_sum_exp([forward[b] + w for b, _, w in ends[end]])
    offsets, begins, ids, cumulative = (array.array("i", [0, 0]), array.array("i"),
                                        array.array("i"), array.array("d"))
    for end in range(1, len(ends)):
      total = 0.0
      for begin, piece, w in ends[end]:
        total += math.exp(forward[begin] + w - forward[end])
        begins.append(begin)
        ids.append(piece)
        cumulative.append(total)
      offsets.append(len(ids))
    return _Filtered(offsets, begins, ids, cumulative)

  def _sample_nbest(self, text: str, rng) -> List[int]:
    """One of the n best, P proportional to exp(alpha * score). A segmentation's score is the
    sum of its pieces' scores; with unknown characters (merged into one UNK id, so the ids do
    not tell their count) sentencepiece's own scores are read instead (3x slower)."""
    candidates = self._sp.nbest_encode_as_ids(text, nbest_size=self.nbest)
    if not candidates:
      return []
    if any(UNK in ids for ids in candidates):
      nbests = self._sp.nbest_encode(text, nbest_size=self.nbest, return_type="proto").nbests
      candidates, scores = [[p.id for p in n.pieces] for n in nbests], [n.score for n in nbests]
    else:
      scores = [sum(self._scores[i] for i in ids) for ids in candidates]
    top = max(scores)
    return candidates[_draw([math.exp(self.alpha * (s - top)) for s in scores], rng)]


def _walk(filtered: _Filtered, rng) -> List[int]:
  """Backward sampling: from the last character, the node ending there with probability
  proportional to its weight (one uniform draw, as `_draw`), then the node ending at its begin."""
  offsets, begins, ids, cumulative = filtered
  out: List[int] = []
  end = len(offsets) - 2
  while end > 0:
    lo, hi = offsets[end], offsets[end + 1]
    u = rng.random() * cumulative[hi - 1]
    k = min(bisect.bisect_right(cumulative, u, lo, hi), hi - 1)
    piece = ids[k]
    if not (piece == UNK and out and out[-1] == UNK):  # reversed: merges consecutive unknowns
      out.append(piece)
    end = begins[k]
  return out[::-1]


def _log_sum_exp(values: List[float]) -> float:
  top = max(values)
  return top + math.log(sum(math.exp(v - top) for v in values))


def _draw(weights: List[float], rng) -> int:
  """Index i with probability weights[i] / sum(weights), from one uniform draw."""
  u = rng.random() * sum(weights)
  total = 0.0
  for i, w in enumerate(weights):
    total += w
    if u < total:
      return i
  return len(weights) - 1
