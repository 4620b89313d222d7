"""A small reader and writer for GNU gettext .mo catalogs.

Python's `gettext.GNUTranslations` refuses some installed catalogs (e.g. a header that does not
decode as the charset it declares), so the catalogs are read directly: the .mo format is a
header, two tables of (length, offset) pairs, and NUL-separated strings
(https://www.gnu.org/software/gettext/manual/html_node/MO-Files.html).
"""
import re
import struct
from typing import Dict, Iterator, Tuple

_MAGIC_LE, _MAGIC_BE = 0x950412DE, 0xDE120495


def _charset(header: bytes) -> str:
  match = re.search(rb"charset=([A-Za-z0-9_.:-]+)", header)
  name = match.group(1).decode("ascii") if match else "utf-8"
  return "utf-8" if name.upper() == "CHARSET" else name


def read_mo(path: str) -> Iterator[Tuple[str, str]]:
  """Yields (msgid, msgstr) for every singular entry; for plural entries the first forms.

  Entries with a message context (msgctxt) are yielded without the context. The header entry
  (empty msgid) is skipped. Raises ValueError for a file that is not a .mo catalog.
  """
  with open(path, "rb") as f:
    blob = f.read()
  if len(blob) < 28:
    raise ValueError(f"{path}: too short to be a .mo file")
  magic = struct.unpack("<I", blob[:4])[0]
  if magic not in (_MAGIC_LE, _MAGIC_BE):
    raise ValueError(f"{path}: not a .mo file (bad magic number)")
  order = "<" if magic == _MAGIC_LE else ">"
  _, count, orig_offset, trans_offset = struct.unpack(order + "4I", blob[4:20])
  entries = []
  for i in range(count):
    olen, ooff = struct.unpack(order + "2I", blob[orig_offset + 8 * i: orig_offset + 8 * i + 8])
    tlen, toff = struct.unpack(order + "2I", blob[trans_offset + 8 * i: trans_offset + 8 * i + 8])
    entries.append((blob[ooff:ooff + olen], blob[toff:toff + tlen]))
  charset = "utf-8"
  for msgid, msgstr in entries:
    if msgid == b"":
      charset = _charset(msgstr)
  for msgid, msgstr in entries:
    if msgid == b"":
      continue
    msgid = msgid.split(b"\x04")[-1].split(b"\x00")[0]  # drop context and plural form
    msgstr = msgstr.split(b"\x00")[0]
    yield (msgid.decode(charset, errors="replace"), msgstr.decode(charset, errors="replace"))


def write_mo(path: str, catalog: Dict[str, str], charset: str = "UTF-8") -> None:
  """Writes a little-endian .mo file holding `catalog` plus a header entry (for tests)."""
  header = f"Content-Type: text/plain; charset={charset}\n"
  items = sorted([("", header)] + list(catalog.items()))
  ids = [k.encode(charset) for k, _ in items]
  strs = [v.encode(charset) for _, v in items]
  n = len(items)
  orig_table, trans_table = 28, 28 + 8 * n
  data_start = 28 + 16 * n
  blob, table_o, table_t = b"", b"", b""
  for key in ids:
    table_o += struct.pack("<2I", len(key), data_start + len(blob))
    blob += key + b"\x00"
  for value in strs:
    table_t += struct.pack("<2I", len(value), data_start + len(blob))
    blob += value + b"\x00"
  head = struct.pack("<7I", _MAGIC_LE, 0, n, orig_table, trans_table, 0, 0)
  with open(path, "wb") as f:
    f.write(head + table_o + table_t + blob)
