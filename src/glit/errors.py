"""The one exception type for bad input. The CLI turns it into a one-line message and exit code 2."""


class GlitError(ValueError):
    """Bad input from the user: a file, a key or a value that glit cannot use. The message names it."""
