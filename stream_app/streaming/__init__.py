"""The Kafka-facing side: event contract, Faust worker, replay, tail."""
