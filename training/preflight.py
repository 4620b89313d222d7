"""Checks that need the registries, run after flags/validation.py and before any data is read or
anything is written: head names and options (users' head modules imported), combiner, datasets,
the selection metric, step and schedule combinations. Also the one-block description of what a
run will do, printed at start and kept in the workdir (RUN_SUMMARY)."""
import dataclasses
from typing import List

from configs.config import Config, HeadSpec
from configs.errors import UserError

RUN_SUMMARY = "run_summary.txt"


def check_registered(config: Config) -> None:
  """UserError for the first name no registry knows (the message lists the known ones)."""
  import data  # pylint: disable=import-outside-toplevel  (registers the datasets)
  from evaluation import scorers  # pylint: disable=import-outside-toplevel
  from training import baselines, combine, combine_balance, combine_grad, step  # noqa: F401  pylint: disable=import-outside-toplevel
  for i, source in enumerate(config.data.sources):
    _named("dataset" if i == 0 else "mix", source.dataset, data.registry.get_reader)
  _named("heads", ";".join(s.name for s in config.heads),
         lambda _: _check_attention_heads_fit(config, resolved_heads(config)))
  _named("combiner", config.train.combiner, combine.get_combiner_class)
  _named("combiner", config.train.combiner,
         lambda _: combine.check_options(config.train, [n for n, _ in resolved_heads(config)]))
  step.check_step_options(config.train.combiner, config.train.accum_steps, 1,
                          config.train.gradient_space, config.train.clip_per_term)
  baselines.check_schedule(config)
  _check_select_metric(config, scorers.registered_scorers())


def _check_attention_heads_fit(config: Config, heads) -> None:
  """Attention regularisers' layer and head indices exist in the configured model (the
  Transformer has num_layers x num_heads cross-attention maps, the RNN one)."""
  from heads.attention import AttentionOptions, select  # pylint: disable=import-outside-toplevel
  model = config.model
  layers, per_layer = ((model.num_layers, model.num_heads) if model.model == "transformer"
                       else (1, 1))
  for name, options in heads:
    if isinstance(options, AttentionOptions):
      select(options.layers, layers, "layers", name)
      select(options.heads, per_layer, "heads", name)


def _named(flag: str, value: str, check) -> None:
  """Runs `check(value)`; its UserError is reported against --flag=value."""
  try:
    check(value)
  except UserError as e:
    raise UserError(f"--{flag}={value}: {e}") from None


def _check_select_metric(config: Config, scorer_names) -> None:
  name = config.train.select_metric
  heads = {"translation"} | {s.name for s in config.heads}
  prefix, slash, rest = name.partition("/")
  if (not slash and name in scorer_names) or (slash and prefix in heads and rest):
    return
  raise UserError(f"--select_metric={name}: expected one of {', '.join(sorted(scorer_names))}, "
                  f"or HEAD/METRIC for a head of this run ({', '.join(sorted(heads))}), "
                  "e.g. price/accuracy")


def resolved_heads(config: Config) -> List[tuple]:
  """[(name, options dataclass)] with every default filled in: translation first, then --heads.
  Imports --head_modules; UserError for an unknown head or option."""
  from heads import spec  # pylint: disable=import-outside-toplevel
  from heads.registry import get_head_class  # pylint: disable=import-outside-toplevel
  spec.import_head_modules(config.head_modules)
  specs = list(config.heads)
  if "translation" not in [s.name for s in specs]:
    specs.insert(0, HeadSpec("translation"))
  return [(s.name, spec.make_options(get_head_class(s.name), s)) for s in specs]


def _folded_regularisers(train, terms) -> List[str]:
  """The heads whose terms join translation's backward (training/term_gradients.py
  `folds_regularisers`; only the joint schedule combines terms in one step)."""
  from heads.registry import get_head_class  # pylint: disable=import-outside-toplevel
  from training import combine, term_gradients  # pylint: disable=import-outside-toplevel
  merges = combine.get_combiner_class(train.combiner).merges_auxiliaries_with(train)
  if not (train.schedule == "joint" and len(terms) > 1 and
          term_gradients.would_fold(merges, train.main_task, train.fold_regularisers)):
    return []
  return [n for n in terms if term_gradients.regularises_translation(get_head_class(n))]


def _precision(precision: str) -> str:
  from training.hardware import resolve_precision  # pylint: disable=import-outside-toplevel
  resolved = resolve_precision(precision)
  return resolved if resolved == precision else f"{precision} ({resolved} on this host)"


def describe_run(config: Config) -> str:
  """What this run does, in one block: data, mix, heads with every option, combiner, model."""
  data, model, train = config.data, config.model, config.train
  main, mix = data.sources[0], data.sources[1:]
  lines = [f"auxseq {config.mode}: workdir {config.workdir}",
           f"  data:     {main.dataset}{' ' + main.data_dir if main.data_dir else ''} "
           f"({data.source_lang}->{data.target_lang}), vocabulary {data.vocab_size}"
           + (f", subword sampling alpha {data.subword_alpha:g} nbest {data.subword_nbest}"
              if data.subword_alpha > 0 else ""),
           "  mix:      " + (", ".join(f"{s.dataset}:{s.weight:g}"
                                       + (f":{s.data_dir}" if s.data_dir else "") for s in mix)
                             or "none")]
  resolved = resolved_heads(config)
  terms = [n for n, o in resolved if o.weight != 0 or n == "translation"]
  for i, (name, options) in enumerate(resolved):
    values = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(options).items())
    skipped = " (weight 0: not built)" if options.weight == 0 and name != "translation" else ""
    lines.append(f"  {'heads:    ' if i == 0 else '          '}{name}({values}){skipped}")
  balance = ""
  if train.combiner in ("metabalance", "task_moments"):
    balance = (f" ({train.balance_strategy} towards {train.balance_target:g}x "
               f"{train.main_task}, relax {train.balance_relax:g})")
  from training import combine, combine_balance, combine_grad  # noqa: F401  pylint: disable=import-outside-toplevel
  per_term = combine.clips_per_term(train, combine.get_combiner_class(train.combiner), terms)
  lines.append(f"  combiner: {train.combiner}{balance}, schedule {train.schedule}, clip_norm "
               f"{train.clip_norm:g}{' per term' if per_term else ''}, precision "
               f"{_precision(train.precision)}")
  folded = _folded_regularisers(train, terms)
  if folded:
    how = (f"at a capped scale refreshed every {train.fold_refresh_every} steps"
           if train.fold_refresh_every else "at their weights, not capped")
    lines.append(f"  folded:   {', '.join(folded)} (translation's regularisers: in its gradient "
                 f"{how}; --fold_regularisers)")
  lines.append(f"  model:    {model.model} d_model {model.d_model}, {model.num_layers}+"
               f"{model.num_layers} layers, dropout {model.dropout:g}")
  decay = {"linear": f"linear to 0 at step {train.train_steps}",
           "linear_time": f"linear to 0 at the {train.max_minutes:g}-minute deadline (the end "
                          f"step re-estimated at every checkpoint, at most {train.train_steps})"
           }.get(train.lr_schedule, "inverse square root")
  budget = f", at most {train.max_minutes:g} minutes" if train.max_minutes else ""
  lines.append(f"  steps:    {train.train_steps}{budget}; learning rate {train.learning_rate:g} "
               f"after {train.warmup_steps} warm-up steps, then {decay}")
  return "\n".join(lines)
