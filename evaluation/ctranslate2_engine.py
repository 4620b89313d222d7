"""`--engine=ctranslate2`: translation with an exported CTranslate2 directory
(evaluation/ctranslate2_export.py), with the decoding semantics of model/decoding.py where
CTranslate2 allows them:

- sources are SentencePiece pieces capped at `source_cap - 1`, then `</s>` (data/pipeline.py);
- sentences are sorted by length and decoded in batches; each batch's output limit is
  min(--max_decode_length, 2 * its longest source (with `</s>`) + 10), as in decoding.py;
- the batches are submitted together and decoded in parallel, one single-threaded worker per
  thread (CTranslate2's inter_threads; the model's weights are shared): on 2 cores, other work
  paused, int8 at beam 4 decoded test2016 3.3x faster (float32 2.5x) than one batch at a time
  on two intra-op threads, with identical output (docs/results.md, Serving);
- `<pad>` and `<s>` are never generated (`suppress_sequences`), as in decoding.py;
- beam 1 is greedy search in both engines.

- the length penalty is ours, GNMT's ((5 + |Y|) / 6) ** alpha with |Y| counting `</s>`
  (model/decoding.py), not CTranslate2's |Y| ** alpha: at beam > 1 with a non-zero penalty
  CTranslate2 searches with no penalty, returns its `beam_size` finished hypotheses with their
  log-probabilities (which include `</s>`), and the best under the GNMT penalty is kept. On the
  52-minute multi30k_transformer model at beam 4 / penalty 0.6 this moved CTranslate2 float32
  from 0.19 BLEU below TensorFlow float32 to 0.04 below (docs/results.md, Serving).

Differences (docs/serving.md): the candidate set is CTranslate2's (the first `beam_size`
hypotheses to finish), ours keeps the best finished ones until no live hypothesis can win, so a
few lines may still differ; CTranslate2 runs float32 (or int8) arithmetic while TensorFlow
decodes in the run's --precision.
"""
import json
import os
import sys
import time
from typing import Iterable, Iterator, List, Sequence, Tuple

from configs.errors import UserError
from evaluation.ctranslate2_export import MANIFEST, _ct2
from training import hardware

SUPPRESSED = [["<pad>"], ["<s>"]]


def gnmt_penalty(length: int, alpha: float) -> float:
  """((5 + |Y|) / 6) ** alpha, |Y| counting `</s>` (model/decoding.gnmt_penalty)."""
  return ((5.0 + length) / 6.0) ** alpha


def best_under_gnmt(hypotheses: Sequence[Sequence[str]], scores: Sequence[float],
                    alpha: float) -> int:
  """Index of the hypothesis (pieces without `</s>`, raw log-probability with it) that our beam
  search would rank first among these: the highest log p / GNMT(|Y| + 1)."""
  return max(range(len(hypotheses)),
             key=lambda j: scores[j] / gnmt_penalty(len(hypotheses[j]) + 1, alpha))


def compute_type(quantization, cpuinfo: str) -> str:
  """CTranslate2's compute type for an export of `quantization` on the CPU `cpuinfo` describes.

  int8 weights compute in float32 on an x86 CPU without VNNI (AVX512-VNNI or AVX-VNNI): there
  the int8 kernels multiply u8 x s8 pairs into saturating int16 sums. Measured on an AVX2-only
  AMD EPYC host, a small random Transformer: int8 compute 1.88 nats per token from TensorFlow's
  scores, the same int8 weights computed in float32 0.02 (tests/evaluation/
  ctranslate2_export_test.py). Elsewhere the export's own type ("default")."""
  flags = hardware.cpu_flags(cpuinfo)
  if str(quantization).startswith("int8") and flags and not {"avx512_vnni", "avx_vnni"} & flags:
    return "float32"
  return "default"


def _prefer_mkl_for_float32(compute: str, cpuinfo: str) -> None:
  """CTranslate2 uses Intel MKL only on Intel CPUs unless CT2_USE_MKL says otherwise. On this
  AMD EPYC host float32 decoding was 2.7x faster with MKL (52.6 vs 19.2 sentences/s at beam 4)
  and int8 6x slower (17.4 vs 110.3), so float32 computation turns it on, where the user did not
  decide. The choice is made once per process, at the first matrix product."""
  if compute != "float32" or "CT2_USE_MKL" in os.environ or not cpuinfo:
    return
  if "GenuineIntel" not in cpuinfo:
    os.environ["CT2_USE_MKL"] = "1"


class Engine:
  """A loaded CTranslate2 directory: pieces in, detokenised text out."""

  def __init__(self, directory: str, threads: int = 0):
    """threads: parallel decoding workers (0 = one per CPU of this process)."""
    import sentencepiece as spm  # pylint: disable=import-outside-toplevel
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
      raise UserError(f"{directory!r} is not an auxseq CTranslate2 export (no {MANIFEST}); "
                      "write one with --mode=export --export_format=ctranslate2")
    with open(path, encoding="utf-8") as f:
      self.manifest = json.load(f)
    self.directory = directory
    cpuinfo = hardware.cpu_info()
    quantization = self.manifest.get("quantization")
    compute = "float32" if quantization == "float32" else compute_type(quantization, cpuinfo)
    _prefer_mkl_for_float32(compute, cpuinfo)
    workers = threads or len(os.sched_getaffinity(0))
    self.translator = _ct2().Translator(directory, device="cpu", inter_threads=workers,
                                        intra_threads=1, compute_type=compute)
    self.source_sp = spm.SentencePieceProcessor(
        model_file=os.path.join(directory, self.manifest["source_spm"]))
    self.target_sp = spm.SentencePieceProcessor(
        model_file=os.path.join(directory, self.manifest["target_spm"]))
    self.source_vocab = [self.source_sp.id_to_piece(i)
                         for i in range(self.source_sp.get_piece_size())]

  def encode(self, lines: Sequence[str]) -> List[List[str]]:
    """Raw lines -> source pieces, capped as the TensorFlow input pipeline caps them, + `</s>`."""
    cap = self.manifest["source_cap"] - 1
    return [pieces[:cap] + [self.manifest["source_eos"]]
            for pieces in self.source_sp.encode(list(lines), out_type=str)]

  def pieces_of_ids(self, rows) -> List[List[str]]:
    """Source id rows (pad 0 dropped; they end with EOS) -> pieces."""
    return [[self.source_vocab[int(i)] for i in row if i != 0] for row in rows]

  def translate(self, sources: List[List[str]], beam_size: int, length_penalty: float,
                max_decode_length: int, batch_size: int) -> List[str]:
    """Detokenised translations of `sources` (pieces ending with `</s>`), in input order."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    rerank = beam_size > 1 and length_penalty != 0  # GNMT's penalty, applied here (docstring)
    options = dict(beam_size=beam_size, length_penalty=0.0 if rerank else length_penalty,
                   suppress_sequences=SUPPRESSED, max_batch_size=0, asynchronous=True)
    if rerank:
      options.update(num_hypotheses=beam_size, return_scores=True)
    pending = []  # (chunk, asynchronous results): every batch is queued before any is awaited
    for start in range(0, len(order), max(batch_size, 1)):
      chunk = order[start:start + max(batch_size, 1)]
      batch = [sources[i] for i in chunk]
      limit = min(max_decode_length, 2 * max(len(s) for s in batch) + 10)
      pending.append((chunk, self.translator.translate_batch(
          batch, max_decoding_length=limit, **options)))
    results = [""] * len(sources)
    for chunk, out in pending:
      for i, result in zip(chunk, out):
        result = result.result()
        best = (best_under_gnmt(result.hypotheses, result.scores, length_penalty)
                if rerank else 0)
        results[i] = self.target_sp.decode(result.hypotheses[best])
    return results


def translate_lines(engine: Engine, lines: Iterable[str], eval_config,
                    window: int = 1000, total: int = 0) -> Iterator[Tuple[str, str]]:
  """(line, translation) in input order, `window` lines at a time (stdin is read lazily).
  With `total` (lines of an input file) a progress line goes to stderr on a terminal."""
  iterator, done, start = iter(lines), 0, time.time()
  while True:
    chunk = [line for _, line in zip(range(window), iterator)]
    if not chunk:
      break
    hyps = engine.translate(engine.encode(chunk), eval_config.beam_size,
                            eval_config.length_penalty, eval_config.max_decode_length,
                            eval_config.eval_batch_size)
    yield from zip(chunk, hyps)
    done += len(chunk)
    if total and sys.stderr.isatty():
      rate = done / max(time.time() - start, 1e-6)
      sys.stderr.write(f"\rtranslated {done}/{total} lines, {rate:,.1f} lines/s")
      sys.stderr.flush()
  if total and sys.stderr.isatty():
    sys.stderr.write("\n")
