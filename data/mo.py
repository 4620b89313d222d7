"""A small reader and writer for GNU gettext .mo catalogs.

Python's `gettext.GNUTranslations` refuses some installed catalogs (e.g. a header that does not
decode in the charset it declares) and hides plural forms behind `ngettext`, so the catalogs are
read directly: the .mo format is a header, two tables of (length, offset) pairs and NUL-separated
strings (https://www.gnu.org/software/gettext/manual/html_node/MO-Files.html).
"""
import codecs
import re
import struct
from typing import Dict, Iterator, List, Tuple

_MAGIC_LE, _MAGIC_BE = 0x950412DE, 0xDE120495


def _charset(header: bytes) -> str:
  match = re.search(rb"charset=([A-Za-z0-9_.:-]+)", header)
  name = match.group(1).decode("ascii") if match else "utf-8"
  try:
    return codecs.lookup(name).name
  except LookupError:  # "CHARSET" (an unfilled template) or unknown: assume UTF-8
    return "utf-8"


def _entries(blob: bytes, path: str) -> List[Tuple[bytes, bytes]]:
  if len(blob) < 20:
    raise ValueError(f"{path}: too short to be a .mo file")
  magic = struct.unpack("<I", blob[:4])[0]
  if magic not in (_MAGIC_LE, _MAGIC_BE):
    raise ValueError(f"{path}: not a .mo file (bad magic number)")
  order = "<" if magic == _MAGIC_LE else ">"
  try:
    _, count, orig_offset, trans_offset = struct.unpack(order + "4I", blob[4:20])
    entries = []
    for i in range(count):
      olen, ooff = struct.unpack_from(order + "2I", blob, orig_offset + 8 * i)
      tlen, toff = struct.unpack_from(order + "2I", blob, trans_offset + 8 * i)
      if ooff + olen > len(blob) or toff + tlen > len(blob):
        raise ValueError(f"{path}: entry {i} points past the end of the file")
      entries.append((blob[ooff:ooff + olen], blob[toff:toff + tlen]))
  except struct.error as e:
    raise ValueError(f"{path}: truncated .mo file ({e})") from None
  return entries


def read_mo(path: str) -> Iterator[Tuple[str, str]]:
  """Yields (msgid, msgstr) pairs of a catalog, without the header entry (empty msgid).

  A plural entry yields (singular, form 0) and, when it has a second form, (plural, form 1).
  A message context (msgctxt) is dropped. Undecodable bytes become U+FFFD.

  Raises:
    ValueError: the file is not a well-formed .mo catalog.
  """
  with open(path, "rb") as f:
    entries = _entries(f.read(), path)
  charset = "utf-8"
  for msgid, msgstr in entries:
    if msgid == b"":
      charset = _charset(msgstr)
  for msgid, msgstr in entries:
    if msgid == b"":
      continue
    ids = msgid.split(b"\x04")[-1].split(b"\x00")
    forms = msgstr.split(b"\x00")
    for source, target in list(zip(ids, forms))[:2]:
      yield source.decode(charset, errors="replace"), target.decode(charset, errors="replace")


def write_mo(path: str, catalog: Dict[str, str], charset: str = "UTF-8") -> None:
  """Writes a little-endian .mo file of `catalog` plus a header entry (tests write catalogs).

  A plural entry is a key "singular\\x00plural" with a value "form0\\x00form1".
  """
  header = f"Content-Type: text/plain; charset={charset}\n"
  items = sorted([("", header)] + list(catalog.items()))
  ids = [k.encode(charset) for k, _ in items]
  strs = [v.encode(charset) for _, v in items]
  n = len(items)
  data_start = 28 + 16 * n
  blob, table_o, table_t = b"", b"", b""
  for key in ids:
    table_o += struct.pack("<2I", len(key), data_start + len(blob))
    blob += key + b"\x00"
  for value in strs:
    table_t += struct.pack("<2I", len(value), data_start + len(blob))
    blob += value + b"\x00"
  head = struct.pack("<7I", _MAGIC_LE, 0, n, 28, 28 + 8 * n, 0, 0)
  with open(path, "wb") as f:
    f.write(head + table_o + table_t + blob)
