"""The batch function."""
