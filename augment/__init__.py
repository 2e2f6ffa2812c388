"""Data builders: quarter-turn copies of labeled sets, and synthetic handwritten pages."""
