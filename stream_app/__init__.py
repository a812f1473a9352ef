"""Real-time retail basket recommendations over Kafka, Redis and a numpy model."""

from stream_app.errors import (
    ArtifactError,
    DataError,
    EventError,
    SchemaError,
    ServiceError,
    StateError,
    StreamAppError,
)

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "DataError",
    "EventError",
    "SchemaError",
    "ServiceError",
    "StateError",
    "StreamAppError",
    "__version__",
]
