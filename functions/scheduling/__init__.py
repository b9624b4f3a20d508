"""The scheduling function."""
