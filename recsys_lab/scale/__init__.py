"""Beyond one machine: Spark MLlib's ALS, data-parallel torch training and sharded faiss indexes.

Import by module: ``recsys_lab.scale.spark`` needs pyspark, ``.distributed`` torch, ``.sharding`` faiss."""
