"""Exception hierarchy of stream_app.

    StreamAppError                 root: everything the package raises on purpose
    ├── DataError                  a transaction export cannot be read or cleaned
    │   └── SchemaError            required columns are missing
    ├── ArtifactError              a model artifact is missing, corrupt or tampered
    ├── EventError                 a basket-update event is malformed (dead-lettered)
    ├── StateError                 the state store failed; ``retriable`` says whether
    │                              the same call may succeed later
    └── ServiceError               a local Kafka/Redis service could not be managed

Retry code asks ``exc.retriable`` instead of matching on types.
"""

from __future__ import annotations


class StreamAppError(Exception):
    """Root of every error raised on purpose by stream_app."""

    retriable: bool = False


class DataError(StreamAppError):
    """A transaction export cannot be read, parsed or cleaned."""


class SchemaError(DataError):
    """A transaction export lacks the columns of either supported schema."""


class ArtifactError(StreamAppError):
    """A model artifact is missing, truncated, tampered with or incompatible."""


class EventError(StreamAppError):
    """A basket-update event failed validation.

    Args:
        reason: Short machine-readable reason code, e.g. ``"bad_json"``.
        detail: Human-readable explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StateError(StreamAppError):
    """The state store failed to read or write."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class ServiceError(StreamAppError):
    """A local Kafka or Redis service could not be installed, started or stopped."""
