"""Data builders: quarter-turn copies of labeled sets, and synthetic pages and close-ups of handwritten and printed
digits."""

import digitdet  # noqa: F401 - imported first: it sets albumentations and ultralytics up offline (digitdet.runtime)
