"""The one exception type every error raised by the project's own code derives from."""


class DmpError(Exception):
    """Root of the project's exceptions."""


class InfrastructureUnavailable(DmpError):
    """The broker or the store could not be reached within the allowed time."""
