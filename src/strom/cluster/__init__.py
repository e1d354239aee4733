"""What makes several brokers one cluster: metadata image, controller, replication."""
