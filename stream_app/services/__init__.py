"""Local Apache Kafka (KRaft) and Redis servers on loopback, for tests and the demo."""
