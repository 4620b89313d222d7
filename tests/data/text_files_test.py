"""parallel_text and tsv sources on small files the tests write."""
import math

import pytest

from configs.errors import UserError
from data.text_files import parse_price, read_parallel_text, read_tsv


def write(directory, files):
  directory.mkdir(parents=True, exist_ok=True)
  for name, text in files.items():
    (directory / name).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
  return str(directory)


CORPUS = {"train.en": "a cat\n\nthe dog\n  \nred hat\n", "train.de": "eine Katze\nx\nder Hund\n"
          "y\nroter Hut\n", "val.en": "one\n", "val.de": "eins\n", "test2016.en": "two\nthree\n",
          "test2016.de": "zwei\n\n"}


def test_parallel_text_counts_and_blank_lines(tmp_path):
  splits, stats = read_parallel_text(write(tmp_path, CORPUS), "en", "de")
  assert [(r["source"], r["target"]) for r in splits["train"]] == [
      ("a cat", "eine Katze"), ("the dog", "der Hund"), ("red hat", "roter Hut")]
  assert [len(splits[s]) for s in ("train", "validation", "test")] == [3, 1, 1]
  assert stats["blank_lines_skipped"] == 3  # two in train, one in test
  assert stats["test_files"] == ["test2016.en", "test2016.de"]
  assert math.isnan(splits["train"][0]["price"]) and splits["train"][0]["domain"] == ""


def test_mismatched_line_counts_name_both_files(tmp_path):
  data_dir = write(tmp_path, dict(CORPUS, **{"val.de": "eins\nzwei\n"}))
  with pytest.raises(UserError, match=r"val\.en has 1 lines but .*val\.de has 2"):
    read_parallel_text(data_dir, "en", "de")


def test_invalid_utf8_reports_line_number(tmp_path):
  data_dir = write(tmp_path, dict(CORPUS, **{"train.de": b"eine\nx\nder \xff Hund\ny\nrot\n"}))
  with pytest.raises(UserError, match=r"train\.de:3: invalid UTF-8"):
    read_parallel_text(data_dir, "en", "de")


def test_missing_and_empty_files(tmp_path):
  files = dict(CORPUS)
  del files["val.de"]
  with pytest.raises(UserError, match="no validation file for language 'de'"):
    read_parallel_text(write(tmp_path / "a", files), "en", "de")
  with pytest.raises(UserError, match=r"test2016\.de' is empty"):
    read_parallel_text(write(tmp_path / "b", dict(CORPUS, **{"test2016.de": ""})), "en", "de")
  with pytest.raises(UserError, match="not a directory"):
    read_parallel_text(str(tmp_path / "nope"), "en", "de")


def test_tsv_masks_and_counts_bad_prices(tmp_path):
  rows = ["id\tname\tprice", "1\tcosy flat\t85", "2\tbig loft\t-3", "3\tsmall room\tabc",
          "4\tattic\tnan", "5\tgarden house\t", "6\tvilla\t1,200", "7\t\t50"]
  path = tmp_path / "listings.tsv"
  path.write_text("\n".join(rows) + "\n", encoding="utf-8")
  splits, stats = read_tsv(str(path), "en", "de")
  prices = {r["source"]: r["price"] for rows_ in splits.values() for r in rows_}
  assert prices["cosy flat"] == 85.0 and prices["villa"] == 1200.0
  assert all(math.isnan(prices[k]) for k in ("big loft", "small room", "attic", "garden house"))
  assert (stats["rows"], stats["prices_masked"], stats["blank_lines_skipped"]) == (6, 4, 1)
  assert all(r["target"] == "" for rows_ in splits.values() for r in rows_)
  assert read_tsv(str(tmp_path), "en", "de")[1]["rows"] == 6  # a directory with one .tsv


def test_tsv_errors_and_embedded_default(tmp_path):
  path = tmp_path / "x.tsv"
  path.write_text("id\ttitle\n1\ta\n", encoding="utf-8")
  with pytest.raises(UserError, match=r"x\.tsv:1: no column 'name'"):
    read_tsv(str(path), "en", "de")
  splits, stats = read_tsv("", "en", "de")
  assert stats["rows"] == 9264 and sum(len(v) for v in splits.values()) == 9264
  assert 0 < len(splits["test"]) < len(splits["train"])


def test_tsv_text_columns_append_metadata_and_keep_the_split(tmp_path):
  rows = ["name\troom\tarea\tprice", "cosy flat\tEntire home\tMitte\t85",
          "small  room\tPrivate room\t\t40", "\tShared room\tWedding\t20"]
  path = tmp_path / "listings.tsv"
  path.write_text("\n".join(rows) + "\n", encoding="utf-8")
  titles, stats = read_tsv(str(path), "en", "de")
  rich, rich_stats = read_tsv(str(path), "en", "de", ("name", "room", "area"))
  # The title first, then each non-empty further column; an empty title skips the row.
  assert sorted(r["source"] for v in rich.values() for r in v) == [
      "cosy flat · Entire home · Mitte", "small room · Private room"]
  assert rich_stats == stats  # same rows, same counts
  for split in titles:  # the split hashes the title only
    assert [r["source"] for r in titles[split]] == [
        r["source"].split(" · ")[0] for r in rich[split]]
  with pytest.raises(UserError, match=r"listings\.tsv:1: no column 'rooms'"):
    read_tsv(str(path), "en", "de", ("name", "rooms"))


@pytest.mark.parametrize("text,value", [("85", 85.0), ("$1,234.5", 1234.5), ("0", 0.0)])
def test_parse_price(text, value):
  assert parse_price(text) == value
  assert math.isnan(parse_price("-" + text if text != "0" else "inf"))


def test_tsv_text_columns_are_part_of_the_prepared_cache_key(tmp_path):
  from data import prepare as prep  # pylint: disable=import-outside-toplevel
  path = tmp_path / "listings.tsv"
  path.write_text("name\troom\tprice\n" + "".join(
      f"flat {i}\tEntire home\t{80 + i}\n" for i in range(40)), encoding="utf-8")
  cache = str(tmp_path / "cache")
  key = prep.source_key("tsv", str(path), "en", "de")
  assert prep.source_key("tsv", str(path), "en", "de", {}) == key  # no options: the old key
  options = {"text_columns": ["name", "room"]}
  assert prep.source_key("tsv", str(path), "en", "de", options) != key
  plain = prep.prepare("tsv", str(path), "en", "de", cache, log=lambda _: None)
  rich = prep.prepare("tsv", str(path), "en", "de", cache, log=lambda _: None, options=options)
  assert plain.path != rich.path
  for split in ("train", "validation", "test"):
    assert [r["source"] + " · Entire home" for r in plain.rows(split)] == [
        r["source"] for r in rich.rows(split)]
