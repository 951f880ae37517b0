"""`import recsys_lab` stays light: heavy libraries load only in the modules that need them."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "faiss", "gensim", "implicit", "fastapi", "sklearn", "matplotlib")


def test_core_imports_pull_in_no_heavy_library():
    code = (
        "import sys, recsys_lab, recsys_lab.data, recsys_lab.evaluation, recsys_lab.models, "
        "recsys_lab.models.ease, recsys_lab.similarity, recsys_lab.external_features, recsys_lab.models.content; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"importing the core loaded {loaded}"
