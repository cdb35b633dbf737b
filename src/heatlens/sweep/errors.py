from heatlens.errors import HeatlensError


class SweepConfigError(HeatlensError):
    """A sweeper option is wrong: the message names the `hydra.sweeper` key and the value at fault."""
