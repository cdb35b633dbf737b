"""The one base of every error a user can cause (a config value, a data file, an input image).

Each layer raises its own subclass (DataError, ModelConfigError, TrackingError...) naming the key, file
or value at fault; every entry point turns any `HeatlensError` into one line and exit code 2
(heatlens.cli.exits). Anything else is a bug and keeps its traceback. A `ValueError`, so code that
caught the layers' errors as ValueError keeps working.
"""


class HeatlensError(ValueError):
    """Bad user input: the message is one line that names the key, file or value at fault."""
