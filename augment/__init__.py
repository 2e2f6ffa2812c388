"""Data builders: quarter-turn copies of labeled sets, and synthetic pages and close-ups of handwritten and printed
digits."""
