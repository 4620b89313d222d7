"""auxseq under the benchmark: its own components, train step and bucketed tf.data stream.

Each trainer is what `--mode=train` runs per step (training/loop.py without logging or
checkpoints): `next(iterator)` on `bundle.train_dataset(batch_tokens, seed)`, then the traced
`make_train_step(...)` call. Imports of auxseq happen here only, so `--only=reference` needs none.
"""
import dataclasses
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from bench import flops as flops_lib

HEADS_SPEC = "price;attention_entropy:reduce=per_head,layers=all;coverage"


@dataclasses.dataclass(frozen=True)
class AuxseqSetup:
  """What varies between the auxseq configurations of one benchmark run.

  Attributes:
    workdir: auxseq work directory (tokenizer and prepared data are cached there; share it only
      between configurations with the same data sources).
    data_dir: parallel_text directory (train/val/test2016 .en/.de).
    model_args: d_model, num_layers, num_heads, ffn_dim (vocab_size is the data's).
    vocab_size / batch_tokens / max_length / shuffle_buffer: DataConfig fields.
    precision: float32 | mixed_bfloat16.
    heads: `--heads` string ("" = translation only).
    mix_prices: mix in the embedded priced listings (tsv, weight 0.2), which `price` needs.
    combiner: `--combiner` (default `fixed`).
    jit_compile: XLA-compile the train step (`--jit_compile`).
    length_buckets: `--length_buckets` (auto = exact, or geometric under jit_compile).
  """
  workdir: str
  data_dir: str
  model_args: Dict
  vocab_size: int = 8000
  batch_tokens: int = 2048
  max_length: int = 64
  shuffle_buffer: int = 20000
  precision: str = "float32"
  heads: str = ""
  mix_prices: bool = False
  seed: int = 1234
  learning_rate: float = 1e-3
  warmup_steps: int = 200
  combiner: str = "fixed"
  jit_compile: bool = False
  length_buckets: str = "auto"


def make_config(setup: AuxseqSetup):
  """The auxseq Config of a setup (dropout 0.1)."""
  from configs.config import (Config, DataConfig, DataSourceConfig,  # pylint: disable=import-outside-toplevel
                              ModelConfig, TrainConfig)
  from heads.spec import parse_heads_spec  # pylint: disable=import-outside-toplevel
  sources = (DataSourceConfig("parallel_text", setup.data_dir),)
  if setup.mix_prices:
    sources += (DataSourceConfig("tsv", "", 0.2),)
  return Config(
      workdir=setup.workdir,
      model=ModelConfig(dropout=0.1, **setup.model_args),
      data=DataConfig(sources=sources, vocab_size=setup.vocab_size,
                      batch_tokens=setup.batch_tokens, length_buckets=setup.length_buckets,
                      max_length=setup.max_length,
                      shuffle_buffer=setup.shuffle_buffer),
      train=TrainConfig(precision=setup.precision, combiner=setup.combiner, seed=setup.seed,
                        jit_compile=setup.jit_compile,
                        learning_rate=setup.learning_rate, warmup_steps=setup.warmup_steps),
      heads=parse_heads_spec(setup.heads))


class AuxseqTrainer:
  """Builds the components of one setup; `run(n)` times n steps (data fetch + train step)."""

  def __init__(self, name: str, setup: AuxseqSetup, config=None):
    """`config`: a full Config to use instead of `make_config(setup)` (e.g. the default job's);
    `setup` still gives the batch size, seed and model_args (for FLOP counts)."""
    from training.components import build_components  # pylint: disable=import-outside-toplevel
    from training.step import make_train_step  # pylint: disable=import-outside-toplevel
    self.name, self.setup = name, setup
    self.config = config or make_config(setup)
    self.components = c = build_components(self.config)
    self.step = make_train_step(c.model, c.heads, c.combiner, c.optimizer,
                                jit_compile=self.config.train.jit_compile)
    self.iterator = None
    self.vocab_size = c.bundle.target_tokenizer.vocab_size
    self.losses: List[float] = []
    self.term_names = c.term_names

  def start(self) -> None:
    """Re-creates the tokenizers' TF resources, then opens the training stream.

    `build_components` calls `tf.random.set_seed`, which clears TF's eager kernel cache and with
    it the kernel-owned resource of every tensorflow-text SentencepieceTokenizer made before
    ("Resource .../SentencepieceOp/... does not exist" inside tf.data). So every trainer is
    built first, then each bundle's tokenizers are re-initialised from their model files.
    """
    bundle = self.components.bundle
    for tokenizer in {id(t): t for t in (bundle.source_tokenizer,
                                         bundle.target_tokenizer)}.values():
      tokenizer.__init__(tokenizer.model_path)
    self.iterator = iter(bundle.train_dataset(self.setup.batch_tokens, self.setup.seed,
                                              pad_to_bucket=self.setup.jit_compile))

  def flop_args(self) -> Dict:
    args = {k: self.setup.model_args[k] for k in ("d_model", "num_layers", "ffn_dim")}
    return dict(args, vocab_size=self.vocab_size)

  def run(self, steps: int) -> Dict:
    """Trains `steps` steps; returns durations [s], target tokens, padded tokens, FLOPs.

    A step that traced the step function again (a new batch shape before `reduce_retracing`
    generalises) is left out of the timing and counted in `retraced`, unless all were.
    """
    records = []
    for _ in range(steps):
      traces = self.step.experimental_get_tracing_count()
      start = time.perf_counter()
      batch = next(self.iterator)
      result = self.step(batch)
      elapsed = time.perf_counter() - start
      records.append((elapsed, result, batch,
                      self.step.experimental_get_tracing_count() != traces))
    self.losses.extend(float(r["loss/translation"]) for _, r, _, _ in records)
    kept = [r for r in records if not r[3]] or records
    flops = 0.0
    for _, _, batch, _ in kept:
      src, tgt = flops_lib.lengths_of_batch(batch["source"].numpy(), batch["target_out"].numpy())
      flops += flops_lib.train_flops(src, tgt, **self.flop_args())
    return {"durations": [r[0] for r in kept],
            "tokens": int(sum(float(r[1]["count/translation"]) for r in kept)),
            "padded_tokens": sum(int(np.prod(r[2]["target_out"].shape)) for r in kept),
            "flops": flops, "retraced": len(records) - len(kept)}


def pipeline_rate(setup: AuxseqSetup, batches: int, warmup: int) -> Dict:
  """Target tokens/s of iterating auxseq's training stream alone (no model), after `warmup`
  batches (shuffle-buffer fill, tracing of the map functions)."""
  import data as data_lib  # pylint: disable=import-outside-toplevel
  config = make_config(setup)
  bundle = data_lib.load_data(config.data, setup.workdir, setup.seed)
  iterator = iter(bundle.train_dataset(setup.batch_tokens, setup.seed))
  for _ in range(warmup):
    next(iterator)
  tokens, start = 0, time.perf_counter()
  for _ in range(batches):
    tokens += int(np.count_nonzero(next(iterator)["target_out"].numpy()))
  elapsed = time.perf_counter() - start
  return {"pipeline_tok_s": tokens / elapsed, "pipeline_batches": batches,
          "pipeline_batch_ms": 1000.0 * elapsed / batches}


def build_trainers(parts: Sequence[str], setups: Dict[str, AuxseqSetup],
                   log) -> Dict[str, "AuxseqTrainer"]:
  """A trainer for every setup named in `parts`, in the setups' order."""
  trainers = {}
  for name, setup in setups.items():
    if name in parts:
      start = time.perf_counter()
      trainers[name] = AuxseqTrainer(name, setup)
      log(f"built {name} in {time.perf_counter() - start:.1f}s "
          f"(loss terms: {', '.join(trainers[name].term_names)})")
  for trainer in trainers.values():  # after every build (see AuxseqTrainer.start)
    trainer.start()
  return trainers


def first_last_loss(losses: Sequence[float], k: int = 3) -> Optional[Dict]:
  """Mean translation loss over the first and the last k recorded steps."""
  if len(losses) < 2 * k:
    k = max(1, len(losses) // 2)
  if not losses:
    return None
  return {"first": float(np.mean(losses[:k])), "last": float(np.mean(losses[-k:]))}
