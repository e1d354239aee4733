"""The `strom` command line."""
