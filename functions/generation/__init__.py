"""The generation function."""
