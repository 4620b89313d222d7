"""The one exception type for mistakes a user can fix (bad flags, bad data, unknown names).

`main.py` turns it into a single `error: ...` line on stderr and exit status 2, with no traceback.
Everything else (a bug) keeps its traceback.
"""


class UserError(ValueError):
  """A problem in the user's input. The message names the thing, the value and what is accepted."""
