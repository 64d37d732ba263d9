"""Evaluation: dataset loaders, metrics (pytrec_eval) and runs."""
