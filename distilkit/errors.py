"""One exception type for problems the user can fix (bad input, missing files, unknown names).

The CLI turns it into one clear error line and a non-zero exit code; anything else is a bug and keeps
its traceback.
"""


class DistilkitError(Exception):
    """A user-facing error: the message is printed as is, on one line."""


def one_line(error: BaseException) -> str:
    """The user's message of `error`, also when a DataLoader worker re-raised it with the worker's traceback
    folded into the text ("Caught DistilkitError in DataLoader worker ... Original Traceback ..."), and always
    one line."""
    text = str(error).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if last.startswith(type(error).__module__) else last
    return text.splitlines()[0] if text else text  # a library's multi-line text inside a message: its first line
