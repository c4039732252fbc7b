"""Subcommands of the tunelab CLI, one module per feature."""
