"""Finding the best items for a query vector fast: faiss indexes, the MIPS-to-L2 reduction, recall and speed.

Import by module: ``recsys_lab.retrieval.index`` and ``.measure`` need faiss; ``.mips`` only numpy."""
