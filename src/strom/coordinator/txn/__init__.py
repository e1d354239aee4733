"""Producer ids and (later) transactions, kept in __transaction_state."""
