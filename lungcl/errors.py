"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class LungclError(Exception):
    """A problem with the user's input or files, explained in one line."""


class StoreVersionError(LungclError):
    """A patch store or cache written by another version of lungcl."""
