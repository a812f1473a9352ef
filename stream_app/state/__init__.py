"""Customer and basket state: the store interface, Redis and in-memory backends."""

from stream_app.state.base import ApplyStatus, EventState, StateStore
from stream_app.state.keys import KeyLayout
from stream_app.state.memory import InMemoryStateStore

__all__ = [
    "ApplyStatus",
    "EventState",
    "InMemoryStateStore",
    "KeyLayout",
    "StateStore",
]
