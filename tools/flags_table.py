"""Prints the flag reference, or with --write puts it into README.md between its markers.

  python tools/flags_table.py --write
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flags import reference  # noqa: E402

if __name__ == "__main__":
  if "--write" in sys.argv:
    reference.write_readme()
  else:
    print(reference.table())
