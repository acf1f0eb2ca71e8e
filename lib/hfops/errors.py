"""The base error of hfops: what the CLI and the console show as a clear message, never a traceback."""


class HfopsError(Exception):
    """An expected failure with a message meant for the operator."""
