"""gettext source on .mo catalogs the test writes: cleaning, dedupe, hash splits, errors."""
import pytest

from configs.errors import UserError
from data import prepare as prep
from data.gettext_source import clean_pair, read_gettext
from data.mo import read_mo, write_mo

APP = {
    "_Open the file": "Datei _öffnen",                     # accelerators, word-initial
    "Save &As copy now": "Speichern &unter Kopie",
    "Show &amp; tell them": "Zeigen &amp; erzählen",       # an entity, not an accelerator
    "Cu_t the selection": "Auswahl a_usschneiden",         # mid-word accelerators
    "Quit": "Beenden",                                     # 1 word: dropped
    "Open file": "Datei öffnen",                           # 2 words: dropped
    "Same text here": "Same text here",                    # identical: dropped
    "No translation given": "",                            # empty: dropped
    "Print   the\n document": "Das Dokument\tdrucken",     # whitespace normalised
    "%d file was removed\x00%d files were removed":        # plural: two pairs
        "%d Datei wurde entfernt\x00%d Dateien wurden entfernt",
    "menu\x04Close the window": "Das Fenster schließen",   # msgctxt dropped
}
OTHER = {
    "Open the file": "Die Datei öffnen",                   # duplicate of app's: dropped
    "Connect to the server": "Mit dem Server verbinden",
    "~Insert a new row": "Neue Zeile ~einfügen",
}
EXPECTED = {
    ("Open the file", "Datei öffnen", "app"),
    ("Save As copy now", "Speichern unter Kopie", "app"),
    ("Show &amp; tell them", "Zeigen &amp; erzählen", "app"),
    ("Cut the selection", "Auswahl ausschneiden", "app"),
    ("Print the document", "Das Dokument drucken", "app"),
    ("%d file was removed", "%d Datei wurde entfernt", "app"),
    ("%d files were removed", "%d Dateien wurden entfernt", "app"),
    ("Close the window", "Das Fenster schließen", "app"),
    ("Connect to the server", "Mit dem Server verbinden", "other"),
    ("Insert a new row", "Neue Zeile einfügen", "other"),
}


def write_locale(root, lang, catalogs):
  directory = root / lang / "LC_MESSAGES"
  directory.mkdir(parents=True)
  for name, catalog in catalogs.items():
    write_mo(str(directory / f"{name}.mo"), catalog)
  return str(root)


def test_mo_round_trip_with_plural_and_context(tmp_path):
  path = str(tmp_path / "x.mo")
  write_mo(path, {"a\x00b": "A\x00B", "ctx\x04c": "C", "d": "D"})
  assert sorted(read_mo(path)) == [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")]


def test_known_catalog_gives_exact_cleaned_pairs(tmp_path):
  root = write_locale(tmp_path, "de", {"app": APP, "other": OTHER})
  splits, stats = read_gettext(root, "en", "de")
  got = {(r["source"], r["target"], r["domain"]) for rows in splits.values() for r in rows}
  assert got == EXPECTED
  assert stats["entries"] == 15  # 11 + 1 extra plural form + 3 (header not counted)
  assert (stats["dropped_short"], stats["dropped_identical_or_empty"], stats["duplicates"]) == (
      2, 2, 1)
  assert stats["domains"] == 2


def test_clean_pair_keeps_identifiers():
  assert clean_pair("set max_value to *_tz() now", "x") == ("set max_value to *_tz() now", "x")


def test_no_source_in_two_splits_and_preparation_is_cached(tmp_path):
  words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
  sentences = [f"{a} {b} {c}" for a in words for b in words for c in words[:4]]  # 400
  first = {s: s.upper() for s in sentences[:300]}
  second = {s: s.title() for s in sentences[200:]}  # 100 sources repeated in another catalog
  root = write_locale(tmp_path / "locale", "fr", {"one": first, "two": second})
  builder = prep.prepare("gettext", root, "en", "fr", str(tmp_path / "cache"))
  rows = {split: builder.rows(split) for split in ("train", "validation", "test")}
  seen = [r["source"] for split_rows in rows.values() for r in split_rows]
  assert len(seen) == len(set(seen)) == 400
  assert rows["validation"] and rows["test"] and len(rows["train"]) > 350
  assert builder.auxseq_stats["duplicates"] == 100
  again = prep.prepare("gettext", root, "en", "fr", str(tmp_path / "cache"),
                       log=lambda line: pytest.fail(f"prepared again: {line}"))
  assert [r["source"] for r in again.rows("test")] == [r["source"] for r in rows["test"]]


def test_missing_catalogs_are_a_user_error(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match=r"no catalogs for language 'de' under .*empty"):
    read_gettext(str(tmp_path / "empty"), "en", "de")
  with pytest.raises(UserError, match="accepted: 'en'"):
    read_gettext(str(tmp_path / "empty"), "fr", "de")
