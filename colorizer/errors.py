"""Errors with messages that say what is wrong and what to do."""


class ColorizerError(Exception):
    """Base of the errors this package raises on purpose."""


class ModelNotFoundError(ColorizerError, KeyError):
    """No model of that name is registered."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ImageError(ColorizerError, ValueError):
    """An input that cannot be read or used as an image."""
