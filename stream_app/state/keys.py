"""Redis key layout of the state store; every key of a shopper shares one hash tag.

=====================================  ======  ===================================
key                                    type    holds, expiry
=====================================  ======  ===================================
``<p>{c:<customer>}:hist``             hash    stock code -> ``"orders units last"``
                                               (last = unix seconds); no expiry
``<p>{c:<customer>}:hist:token``       string  names the history's content: set
                                               anew whenever the history changes,
                                               and created by the first request
                                               for a history (see
                                               ``state.redis``); no expiry
``<p>{c:<customer>}:basket:<basket>``  hash    stock code -> units; ``basket_ttl``
``<p>{c:<customer>}:order:<basket>``   list    the basket's stock codes in the
                                               order first added; ``basket_ttl``
``<p>{c:<customer>}:closed:<basket>``  string  checkout time; ``seen_events_ttl``
``<p>{c:<customer>}:seen:<event_id>``  string  ``1``; ``seen_events_ttl``
``<p>{b:<basket>}:basket``             hash    anonymous basket; ``basket_ttl``
``<p>{b:<basket>}:order``              list    as above, anonymous
``<p>{b:<basket>}:closed``             string  as above, anonymous
``<p>{b:<basket>}:seen:<event_id>``    string  as above, anonymous
``<p>{b:<basket>}:hist``               hash    never written: anonymous shoppers
                                               have no history; named so the
                                               script always gets six keys
``<p>{b:<basket>}:hist:token``         string  never written, likewise
=====================================  ======  ===================================

``<p>`` is ``settings.redis_key_prefix``. The ``{...}`` hash tag puts all keys of
one shopper in one Redis Cluster slot, so one script may touch them atomically.
History is kept by stock code, not by the model's item index, because the index
changes whenever the model is retrained.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.streaming.events import BasketEvent


@dataclass(frozen=True)
class KeyLayout:
    """Builds the keys of the state store under one prefix."""

    prefix: str = ""

    def history(self, customer_id: str) -> str:
        """Return the history hash of a customer."""
        return f"{self.prefix}{{c:{customer_id}}}:hist"

    def history_token(self, customer_id: str) -> str:
        """Return the key naming the content of a customer's history hash."""
        return f"{self.history(customer_id)}:token"

    def event_keys(self, event: BasketEvent) -> tuple[str, str, str, str, str, str]:
        """Return the (seen, basket, order, closed, history, history token) keys
        of one event."""
        if event.customer_id is None:
            tag = f"{self.prefix}{{b:{event.basket_id}}}"
            return (
                f"{tag}:seen:{event.event_id}",
                f"{tag}:basket",
                f"{tag}:order",
                f"{tag}:closed",
                f"{tag}:hist",
                f"{tag}:hist:token",
            )
        tag = f"{self.prefix}{{c:{event.customer_id}}}"
        return (
            f"{tag}:seen:{event.event_id}",
            f"{tag}:basket:{event.basket_id}",
            f"{tag}:order:{event.basket_id}",
            f"{tag}:closed:{event.basket_id}",
            f"{tag}:hist",
            f"{tag}:hist:token",
        )

    def pattern(self) -> str:
        """Return a SCAN pattern matching every key of this layout."""
        return f"{self.prefix}{{*"
