"""Customer and basket state: the store interface and its Redis and in-memory backends."""
