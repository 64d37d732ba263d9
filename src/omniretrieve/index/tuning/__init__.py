"""Self-tuning of a collection's search without relevance labels: pseudo-queries drawn from
its own documents judge every fusion weighting, fusion method and reranker mix."""
