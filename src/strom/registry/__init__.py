"""Schema registry: Confluent's REST API, schemas stored in the _schemas topic."""
