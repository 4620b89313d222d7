"""Frozen configuration dataclasses. Everything below `main.py`/`flags/` takes these, never flags.

Variants are made with `dataclasses.replace`; named presets live in `configs/presets.py`.
"""
import dataclasses
from typing import Tuple


@dataclasses.dataclass(frozen=True)
class DataSourceConfig:
  """One source in the training stream.

  Attributes:
    dataset: registered data source name (`gettext`, `parallel_text`, `tsv`).
    data_dir: directory (parallel_text) or file path (tsv); unused by gettext.
    weight: sampling weight of this source when several are mixed.
  """
  dataset: str = "gettext"
  data_dir: str = ""
  weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Data sources, tokenisation and batching.

  Attributes:
    sources: the main (translation) source first, then any extra sources mixed in.
    source_lang / target_lang: language codes (e.g. `en`, `de`).
    vocab_size: sentencepiece vocabulary size (ids 0..3 are pad/unk/bos/eos).
    joint_vocab: one vocabulary for both sides (else one per side).
    batch_tokens: token budget per batch (max of source/target padded tokens).
    length_buckets: how the training stream groups examples by length (the longer side) before
      batching: `exact` (one bucket per length: ~0.95 of the padded target tokens are real on
      Multi30k), `geometric` (bounds 8, 12, 16, 20, 24, 32, 40, 48, 64, ...: ~0.86, the stream
      before 2026-12-06; ten batch shapes, for XLA) or `auto` (`geometric` under --jit_compile,
      else `exact`). Each bucket's batch holds batch_tokens // (its bound) examples.
    max_length: examples with more subword tokens on either side are dropped (and counted).
    shuffle_buffer: examples in the shuffle buffer of the training stream.
    tokenizer_sample: sentences each sentencepiece model trains on: a reservoir sample of the
      training split seeded by the run's seed (joint vocabulary: half from each side); the
      whole side, in order, when it is smaller. 300,000 keeps preparation under 2 GB on
      WMT-shaped text (SentencePiece needs ~17.5 bytes per sample character; docs/data.md).
    data_cache_dir: shared cache of prepared data and vocabularies, keyed by their fingerprints
      ("" = $XDG_CACHE_HOME/auxseq/data, else ~/.cache/auxseq/data).
    subword_alpha: subword regularisation (Kudo 2018) of the training stream: inverse
      temperature of the sampled segmentations (0 = off: the best segmentation, as everywhere
      else). Samples are seeded by the run's seed and the stream position (data/subword.py).
    subword_nbest: -1 = sample from the whole lattice; n >= 2 = from the n best segmentations.
    tsv_text_columns: the columns a `tsv` source's text is made of: the first (the listing's
      title) decides the split, each further non-empty one is appended after " · ".
  """
  sources: Tuple[DataSourceConfig, ...] = (DataSourceConfig(),
                                           DataSourceConfig("tsv", "", 0.15))
  source_lang: str = "en"
  target_lang: str = "de"
  vocab_size: int = 4000
  joint_vocab: bool = True
  batch_tokens: int = 2048
  length_buckets: str = "auto"
  max_length: int = 64
  shuffle_buffer: int = 20000
  tokenizer_sample: int = 300_000
  data_cache_dir: str = ""
  subword_alpha: float = 0.0
  subword_nbest: int = -1
  tsv_text_columns: Tuple[str, ...] = ("name",)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture. Transformer fields apply to `transformer`, rnn_* to `rnn`.

  Attributes:
    model: `transformer` or `rnn`.
    d_model: embedding / hidden width.
    num_layers: encoder and decoder layers (each).
    num_heads: attention heads (Transformer).
    ffn_dim: feed-forward inner width (Transformer).
    dropout: dropout rate on residuals, attention and embeddings.
    tie_embeddings: share source/target embedding and output projection (needs joint vocab).
    summary: how the Transformer pools `encoder_summary`: mean|max|first|attention.
    rnn_cell: `lstm` or `gru`.
  """
  model: str = "transformer"
  d_model: int = 128
  num_layers: int = 2
  num_heads: int = 4
  ffn_dim: int = 512
  dropout: float = 0.1
  tie_embeddings: bool = True
  summary: str = "mean"
  rnn_cell: str = "lstm"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimisation and run control.

  Attributes:
    train_steps: optimizer steps in total (a rerun resumes up to this number).
    learning_rate: peak learning rate.
    warmup_steps: linear warm-up steps, then the decay of lr_schedule.
    lr_schedule: inverse_sqrt (peak * sqrt(warmup / step), no end) | linear (linearly to 0 at
      train_steps: for a run whose length is known, training/schedules.py) | linear_time
      (linearly to 0 at the max_minutes deadline, the end re-estimated from the measured step
      time at every checkpoint, at most train_steps: schedules.EndFitter).
    clip_norm: global-norm clip of the combined gradient (0 = off).
    seed: global seed; every variable's initial value derives from (seed, component).
    deterministic: enable TF op determinism and a fixed data order.
    combiner: registered loss combiner name.
    checkpoint_every / eval_every / log_every: intervals in steps.
    keep_checkpoints: checkpoints kept by the manager.
    precision: auto | float32 | mixed_bfloat16 | mixed_float16; auto = mixed_bfloat16 where
      bfloat16 is native (AVX512-BF16/AMX CPUs, GPUs >= 8.0), mixed_float16 on older GPUs,
      float32 on other CPUs (training/hardware.py).
    max_minutes: stop training after this wall time (0 = no limit); a rerun continues.
    on_nonfinite: `stop` (name the loss term, keep the last good checkpoint) or `skip` the step.
    select_metric: validation metric that picks the best checkpoint (direction from the metric).
    early_stop_patience: stop after this many validations without improvement (0 = never).
    lr_control: none | plateau (multiply the LR by lr_decay after a validation without
      improvement) | newbob (once an improvement is below 1% relative, decay at every
      validation), both driven by select_metric, never by the training loss.
    jit_compile: XLA-compile the train step.
    accum_steps: micro-batches per optimizer step; each loss is divided by its count over all
      of them (exact: equals one step on the concatenated batch). `fixed` combiner only.
    distribute: none | mirrored (tf.distribute.MirroredStrategy over the visible GPUs, or the
      logical CPU devices) | multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG).
    log_grad_stats_every: every N steps, per-term gradient norms and pairwise cosines at the
      encoder boundary go to TensorBoard and metrics.jsonl (0 = never).
    schedule: joint (every loss in one step; the design) | alternating (alternate_ratio
      translation-only steps, then one auxiliary-only step) | two_optimizers (a translation step
      and an auxiliary step with its own Adam, every step). The last two are baselines only.
    alternate_ratio: translation steps per auxiliary step under schedule=alternating.
    init_from: warm start `WORKDIR[@STEP]` ('' = off): a new run starts from that run's model
      weights, the weights of heads both runs have, and its vocabulary; optimizer, schedule and
      step start afresh, new heads are initialised as in a fresh run (training/warm_start.py).
    ema_decay: exponential moving average of the weights, used for every evaluation and for
      translate/export (0 = off); see training/averaging.py.
    main_task: the loss term metabalance / task_moments balance the others towards and pcgrad
      never projects (docs/balancing.md).
    balance_relax: relax factor r in [0, 1] of metabalance / task_moments (0 = plain weighted
      sum, 1 = full equalisation to the target magnitude).
    balance_strategy: which auxiliary gradients metabalance / task_moments rescale (He et al.
      2022, strategies A-C): shrink (only those above the target), enlarge (only those below)
      or both.
    balance_target: the target magnitude as a fraction of the main task's (1 = the paper's).
    clip_per_term: where the step takes per-term gradients anyway (gradient combiners over the
      weights, two or more terms; training/combine.py `clips_per_term`), clip each term's
      weighted gradient to clip_norm before the terms are combined, instead of one clip of the
      sum (with metabalance's shrink cap: translation and the auxiliaries' sum, each).
    gradient_space: where gradient combiners take per-term gradients: weights (the shared
      weights; terms on different rows meet there) | boundary (the encoder outputs).
    fold_regularisers: with metabalance's shrink cap (the default combiner), translation's
      regularisers (heads reading its logits or cross-attention, e.g. attention_entropy) join
      translation's backward, capped against translation alone (fold_refresh_every), instead of
      sharing the other auxiliaries' cap: one backward instead of two on the sentence pairs,
      and the regulariser acts against translation alone, so more strongly (on by default
      since 2026-12-05, with attention_entropy's default weight lowered to 0.003 for it:
      docs/results.md, issue 18).
    fold_refresh_every: with fold_regularisers, every N optimizer steps translation's and its
      regularisers' gradients are taken separately (two backwards) and the regularisers' scale
      is set to the least-squares scalar of the shrink cap on them; the steps between fold them
      in at that scale (one backward). 0 = no cap: folded at their fixed weights.
  """
  train_steps: int = 1500
  learning_rate: float = 2e-3
  warmup_steps: int = 300
  lr_schedule: str = "inverse_sqrt"
  clip_norm: float = 1.0
  seed: int = 1234
  deterministic: bool = False
  combiner: str = "metabalance"
  checkpoint_every: int = 100
  eval_every: int = 0
  log_every: int = 50
  keep_checkpoints: int = 5
  precision: str = "auto"
  max_minutes: float = 0.0
  on_nonfinite: str = "stop"
  select_metric: str = "bleu"
  early_stop_patience: int = 0
  lr_control: str = "none"
  lr_decay: float = 0.5
  jit_compile: bool = False
  ema_decay: float = 0.0
  accum_steps: int = 1
  distribute: str = "none"
  log_grad_stats_every: int = 0
  schedule: str = "joint"
  alternate_ratio: int = 10
  main_task: str = "translation"
  balance_relax: float = 1.0
  balance_strategy: str = "shrink"
  balance_target: float = 0.3
  clip_per_term: bool = True
  gradient_space: str = "weights"
  fold_regularisers: bool = True
  fold_refresh_every: int = 10
  init_from: str = ""


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """Decoding and evaluation I/O.

  Attributes:
    beam_size: 1 = greedy.
    length_penalty: GNMT alpha; 0 = none.
    max_decode_length: hard cap on output tokens (also relative: source length * 2 + 10).
    split: split for `--mode=evaluate` when no input file is given.
    input_file / output_file / reference_file: evaluate and translate I/O.
    output_format: text | jsonl.
    eval_batch_size: sentences per decoding batch.
    inspect_lines: sentences `--mode=inspect` draws (the first N of --input_file or --split).
    average_last: evaluate/translate/export the average of the last N regular checkpoints
      (0 = off); the final test score of `--mode=train` uses it when N > 1.
    translate_batch_tokens: source-token budget of a `--mode=translate` batch (0 = batches of
      eval_batch_size sentences).
    export_format: `--mode=export` writes a `savedmodel` (WORKDIR/export) or a `ctranslate2`
      model directory (WORKDIR/ctranslate2; Transformer only).
    quantization: weight type of the CTranslate2 export: int8 | int8_float32 | float32.
    engine: decoder of translate/evaluate: `tensorflow` (beam search in model/decoding.py),
      `ctranslate2` (the exported directory; translations only, no head predictions), or `auto`:
      translate (text) uses WORKDIR/ctranslate2 when it holds the weights the workdir gives now
      (no TensorFlow import: start-up ~1 s), TensorFlow otherwise; evaluate uses TensorFlow.
    ctranslate2_dir: the CTranslate2 directory `--engine=ctranslate2` uses ('' =
      WORKDIR/ctranslate2, exported first when missing).
    export_after_training: `--mode=train` ends by writing WORKDIR/ctranslate2 from the weights
      it scored (Transformer only), for `--engine=auto`.
  """
  beam_size: int = 4
  length_penalty: float = 0.6
  max_decode_length: int = 128
  split: str = "test"
  input_file: str = ""
  output_file: str = ""
  reference_file: str = ""
  output_format: str = "text"
  eval_batch_size: int = 64
  max_eval_examples: int = 0
  average_last: int = 0
  translate_batch_tokens: int = 4096
  inspect_lines: int = 8
  export_format: str = "savedmodel"
  quantization: str = "int8"
  engine: str = "auto"
  ctranslate2_dir: str = ""
  export_after_training: bool = True


@dataclasses.dataclass(frozen=True)
class HeadSpec:
  """One auxiliary head as requested: its registered name and raw option strings."""
  name: str
  options: Tuple[Tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything a mode needs."""
  mode: str = "train"
  workdir: str = "workdir"
  overwrite: bool = False
  model: ModelConfig = ModelConfig()
  data: DataConfig = DataConfig()
  train: TrainConfig = TrainConfig()
  eval: EvalConfig = EvalConfig()
  heads: Tuple[HeadSpec, ...] = (HeadSpec("price"), HeadSpec("domain"),
                                  HeadSpec("attention_entropy"))
  head_modules: Tuple[str, ...] = ()


def to_dict(config) -> dict:
  """JSON-ready nested dict of a config (tuples become lists)."""
  return dataclasses.asdict(config)
