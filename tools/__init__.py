"""Build helpers of the repository (not part of any distribution)."""
