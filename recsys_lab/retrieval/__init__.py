"""Finding the best items for a query vector fast: faiss indexes, the MIPS-to-L2 reduction, recall and speed,
and re-ranking the candidates found (maximal marginal relevance for diversity and freshness).

Import by module: ``recsys_lab.retrieval.index`` and ``.measure`` need faiss; ``.mips`` and ``.rerank`` only numpy."""
