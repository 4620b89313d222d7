"""`gettext`: English->X pairs from the gettext catalogs installed on this machine.

Reads ROOT/<lang>/LC_MESSAGES/*.mo (ROOT = data_dir, default /usr/share/locale); msgid is the
English source, msgstr the translation, the catalog's file stem the `domain`. Cleaning, in order:
accelerator markers stripped (`_File`, `&File`, `~File`, and the one mid-word marker of a label
such as `Ö_ffnen`), whitespace normalised, then dropped and counted: pairs with an empty side or
identical sides, pairs whose source has fewer than 3 words, repeated sources (first catalog in
sorted order wins). Format strings (`%s`, `{0}`) are kept: a translator copies them through, and
a model can learn to. Plural entries give two pairs: (singular, form 0) and (plural, form 1).
The split is by hash of the cleaned source, so no source sentence is in two splits.
"""
import glob
import os
import re
from typing import Dict, Tuple

from absl import logging

from configs.errors import UserError
from data.mo import read_mo
from data.registry import Example, Splits, example, register_source, split_rows

DEFAULT_LOCALE_ROOT = "/usr/share/locale"
MIN_SOURCE_WORDS = 3
VALIDATION_PER_MILLE, TEST_PER_MILLE = 20, 20

_LETTER = r"[^\W\d_]"
_ENTITY = r"(?![A-Za-z]+;|#\d+;)"  # `&amp;`, `&#38;` are markup, not accelerators
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # BEL etc. in terminal messages
_WORD_START = r"(?<![^\s(\[\"'“„«‚‘])"  # at the start, after a space, bracket or quote


def _marker_patterns(marker: str) -> Tuple[re.Pattern, re.Pattern]:
  m = re.escape(marker)
  guard = _ENTITY if marker == "&" else ""
  word_initial = re.compile(rf"{_WORD_START}{m}{guard}(?={_LETTER})")
  anywhere = re.compile(rf"(?<!{m}){m}{guard}(?={_LETTER})")
  return word_initial, anywhere


_MARKERS = {marker: _marker_patterns(marker) for marker in "_&~"}


def _strip_marker(text: str, word_initial: re.Pattern, anywhere: re.Pattern) -> str:
  """Removes a label's accelerator: the single marker if there is one, else word-initial ones."""
  if len(anywhere.findall(text)) == 1:
    return anywhere.sub("", text)
  return word_initial.sub("", text)


def _single_marked_word(text: str, anywhere: re.Pattern):
  """The word holding the text's only marker, or None (no marker, or several)."""
  matches = list(anywhere.finditer(text))
  if len(matches) != 1:
    return None
  start = matches[0].start()
  words = [w for w in re.finditer(r"\S+", text) if w.start() <= start < w.end()]
  return words[0].group() if words else None


def _is_label(msgid: str, msgstr: str, word_initial: re.Pattern, anywhere: re.Pattern) -> bool:
  """A word-initial marker on either side, or one mid-word marker per side in different words
  (`Cu_t` / `a_usschneiden`); the same word on both sides is an identifier (`max_value`)."""
  if word_initial.search(msgid) or word_initial.search(msgstr):
    return True
  src_word, tgt_word = _single_marked_word(msgid, anywhere), _single_marked_word(msgstr, anywhere)
  return src_word is not None and tgt_word is not None and src_word != tgt_word


def clean_pair(msgid: str, msgstr: str) -> Tuple[str, str]:
  """Strips accelerator markers of UI labels and control characters; normalises whitespace.

  >>> clean_pair("Open _Recent File", "Zuletzt ge_öffnete Datei")
  ('Open Recent File', 'Zuletzt geöffnete Datei')
  """
  for word_initial, anywhere in _MARKERS.values():
    if _is_label(msgid, msgstr, word_initial, anywhere):
      msgid = _strip_marker(msgid, word_initial, anywhere)
      msgstr = _strip_marker(msgstr, word_initial, anywhere)
  return (" ".join(_CONTROL.sub("", msgid).split()),
          " ".join(_CONTROL.sub("", msgstr).split()))


def _catalog_files(root: str, lang: str):
  files = sorted(glob.glob(os.path.join(root, lang, "LC_MESSAGES", "*.mo")))
  if not files:
    raise UserError(f"dataset gettext: no catalogs for language {lang!r} under {root!r} "
                    f"(looked for {os.path.join(root, lang, 'LC_MESSAGES', '*.mo')}); use a "
                    "--target_lang with installed catalogs or --data_dir=LOCALE_ROOT")
  return files


def _keep(src: str, tgt: str, seen: Dict[str, Example], stats: dict) -> bool:
  """Applies the filters in order, counting each drop under its reason."""
  if not src or not tgt or src == tgt:
    reason = "dropped_identical_or_empty"
  elif len(src.split()) < MIN_SOURCE_WORDS:
    reason = "dropped_short"
  elif src in seen:
    reason = "duplicates"
  else:
    return True
  stats[reason] += 1
  return False


@register_source("gettext", "English->X UI strings from this machine's gettext catalogs "
                 "(DATA_DIR or /usr/share/locale)/<lang>/LC_MESSAGES/*.mo; domain = catalog")
def read_gettext(data_dir: str, source_lang: str, target_lang: str) -> Tuple[Splits, dict]:
  """Cleaned, deduplicated English->target pairs, split ~96/2/2 by hash of the source."""
  if source_lang != "en":
    raise UserError(f"dataset gettext translates from English (msgids); got --source_lang="
                    f"{source_lang!r}, accepted: 'en'")
  root = data_dir or DEFAULT_LOCALE_ROOT
  files = _catalog_files(root, target_lang)
  stats = {"catalogs": len(files), "unreadable_catalogs": 0, "entries": 0,
           "dropped_identical_or_empty": 0, "dropped_short": 0, "duplicates": 0}
  seen: Dict[str, Example] = {}
  for path in files:
    domain = os.path.basename(path)[:-len(".mo")]
    try:
      entries = list(read_mo(path))
    except (ValueError, OSError) as e:
      logging.warning("gettext: skipping unreadable catalog %s: %s", path, e)
      stats["unreadable_catalogs"] += 1
      continue
    for msgid, msgstr in entries:
      stats["entries"] += 1
      src, tgt = clean_pair(msgid, msgstr)
      if _keep(src, tgt, seen, stats):
        seen[src] = example(src, tgt, domain)
  splits = split_rows([seen[src] for src in sorted(seen)], VALIDATION_PER_MILLE, TEST_PER_MILLE)
  if not splits["train"]:
    raise UserError(f"dataset gettext: the {len(files)} catalogs for {target_lang!r} under "
                    f"{root!r} give no usable pairs after cleaning (need >= {MIN_SOURCE_WORDS}"
                    "-word translated sources)")
  stats.update({f"{s}_examples": len(v) for s, v in splits.items()})
  stats["domains"] = len({row["domain"] for rows in splits.values() for row in rows})
  return splits, stats
