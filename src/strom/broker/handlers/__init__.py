"""One module per API family: decode -> domain call -> encode; nothing else."""
