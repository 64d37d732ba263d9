"""Model families (one module each) and the registry that picks one from a checkpoint."""
