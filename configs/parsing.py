"""Text -> config parsing for `--heads` and `--mix`: pure Python, no TensorFlow (flags are checked
before TensorFlow loads)."""
from typing import Sequence, Tuple

from configs.config import DataSourceConfig, HeadSpec
from configs.errors import UserError


def check_unique_heads(specs: Sequence[HeadSpec]) -> None:
  """A head named twice is a user error (its options would silently merge or override)."""
  names = [s.name for s in specs]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise UserError(f"--heads names head {duplicates[0]!r} more than once")


def parse_heads_spec(text: str) -> Tuple[HeadSpec, ...]:
  """Parses `--heads`: 'price:weight=0.3,buckets=5;coverage:layers=0+2' -> HeadSpecs.

  Heads are separated by `;`, a head's options follow `:` as `,`-separated `opt=value` pairs;
  a list value uses `+` inside one option (`hidden=64+32`). Values stay strings here
  (heads/spec.py `make_options` types them). An empty string gives ().

  Raises:
    UserError: a fragment that is not `name[:opt=value,...]` (quoted in the message), or a
      head named twice.
  """
  specs = []
  for fragment in filter(None, (part.strip() for part in text.split(";"))):
    name, _, options = fragment.partition(":")
    name = name.strip()
    if not name or not name.replace("_", "").isalnum():
      raise UserError(f"--heads: bad head name in {fragment!r}; expected name:opt=value,...")
    pairs = []
    for item in filter(None, (o.strip() for o in options.split(","))):
      key, eq, value = item.partition("=")
      if not eq or not key.strip():
        raise UserError(f"--heads: head {name!r}: expected opt=value, got {item!r}")
      pairs.append((key.strip(), value.strip()))
    specs.append(HeadSpec(name, tuple(pairs)))
  check_unique_heads(specs)
  return tuple(specs)


def parse_mix(text: str) -> Tuple[DataSourceConfig, ...]:
  """'tsv:0.2,parallel_text:0.5:/path' -> tuple of DataSourceConfig ('' -> ())."""
  sources = []
  for item in filter(None, (part.strip() for part in text.split(","))):
    name, _, rest = item.partition(":")
    weight_text, _, data_dir = rest.partition(":")
    try:
      weight = float(weight_text)
    except ValueError:
      raise UserError(f"--mix={text}: entry {item!r}: expected NAME:WEIGHT[:DATA_DIR] with a "
                      f"numeric weight, got weight {weight_text!r}") from None
    if not weight > 0 or weight == float("inf"):
      raise UserError(f"--mix={text}: entry {item!r}: the weight must be a finite number > 0")
    sources.append(DataSourceConfig(name.strip(), data_dir, weight))
  return tuple(sources)
