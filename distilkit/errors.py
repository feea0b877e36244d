"""One exception type for problems the user can fix (bad input, missing files, unknown names).

The CLI turns it into one clear error line and a non-zero exit code; anything else is a bug and keeps
its traceback.
"""


class DistilkitError(Exception):
    """A user-facing error: the message is printed as is, on one line."""


def first_line(error: BaseException) -> str:
    """The first line of a library's message that says something: OpenVINO's start with the C++ source location
    (`Exception from src/inference/src/cpp/core.cpp:84:`), which says nothing to a user."""
    import re

    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    said = [ln for ln in lines if not re.fullmatch(r"Exception from \S+:\d+:?", ln)]
    return (said or lines or [type(error).__name__])[0]


def one_line(error: BaseException) -> str:
    """The user's message of `error`, also when a DataLoader worker re-raised it with the worker's traceback
    folded into the text ("Caught DistilkitError in DataLoader worker ... Original Traceback ..."), and always
    one line."""
    text = str(error).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if last.startswith(type(error).__module__) else last
    return text.splitlines()[0] if text else text  # a library's multi-line text inside a message: its first line
