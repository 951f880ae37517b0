"""recsys_lab: the package behind the runnable textbook on embeddings for recommender systems.

Importing it is light (numpy, scipy, pandas): modules that need torch,
gensim, transformers or faiss import them themselves.
"""

import logging

__version__ = "0.1.0"

logging.getLogger("recsys_lab").addHandler(logging.NullHandler())
