"""Fine-tuning: a base model + what a user has (labels, clicks, or only documents) -> a new
checkpoint directory in the base's own layout, loadable everywhere a model is.

Nothing here is imported by ``import omniretrieve``: training pulls sentence-transformers,
datasets and accelerate (the ``train`` extra) only when it runs.
"""

from __future__ import annotations
