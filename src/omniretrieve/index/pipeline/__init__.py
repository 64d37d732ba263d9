"""A collection search as one sequence of stages, each a module with one entry point, run in
this order by :class:`omniretrieve.index.search.Searcher`:

1. :mod:`.planning` (``plan_search``): the queries parsed and checked, the vector fields, the
   filter, the depth of each list, the rerank and diversity asked for: a :class:`SearchPlan`.
2. :mod:`.first_stages` (``FirstStages.run``): per query, BM25's list and each vector field's
   (routed by language where asked), or the lists a caller supplied.
3. :mod:`.fusing` (``fuse``): the lists fused into one ranking (the collection's method and
   weights, or its fit).
4. :mod:`.reranking` (``rerank``): the best candidates re-ordered by a reranker.
5. :mod:`.diversifying` (``diversify``): near-duplicates folded, MMR.
6. :mod:`.hits` (``hits``): the best ``top_k`` with their scores per stage, passages and
   highlights.

Each stage takes every query of the search at once and hands the next a :class:`QueryState`
per query (:mod:`.state`); a stage the plan does not ask for is not entered.
"""
