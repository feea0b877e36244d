"""One exception type for problems the user can fix (bad input, missing files, unknown names).

The CLI turns it into one clear error line and a non-zero exit code; anything else is a bug and keeps
its traceback.
"""


class DistilkitError(Exception):
    """A user-facing error: the message is printed as is, on one line."""
