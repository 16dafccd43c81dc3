"""Seeded, documented data for the book's experiments."""
