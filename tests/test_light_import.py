"""`import recsys_lab` stays light: heavy libraries load only in the modules that need them."""

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import recsys_lab

HEAVY = ("torch", "transformers", "faiss", "gensim", "implicit", "fastapi", "sklearn", "matplotlib")
PACKAGE = Path(recsys_lab.__file__).parent
SUBPACKAGES = sorted(f"recsys_lab.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE)]) if m.ispkg)
# modules that only need numpy, scipy and pandas
LIGHT_MODULES = ["recsys_lab.models.ease", "recsys_lab.models.content", "recsys_lab.analysis.similarity",
                 "recsys_lab.features.external", "recsys_lab.features.cooccurrence", "recsys_lab.retrieval.mips"]


def test_every_subpackage_and_light_module_imports_no_heavy_library():
    code = (
        f"import sys, recsys_lab, {', '.join(SUBPACKAGES + LIGHT_MODULES)}; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"importing the core loaded {loaded}"


def test_the_top_level_holds_only_subpackages_and_the_shared_checks():
    modules = sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE)]) if not m.ispkg)
    assert modules == ["__main__", "validation"]
    assert {"data", "evaluation", "features", "models", "retrieval", "analysis", "serving", "course"} <= {
        name.split(".")[1] for name in SUBPACKAGES}


def test_no_private_name_is_imported_across_modules():
    private_import = re.compile(r"from recsys_lab[\w.]* import [^\n]*\b_[a-z]")
    sources = [*PACKAGE.glob("**/*.py"), *Path(__file__).parent.glob("*.py")]
    offenders = [f"{path.name}: {match.group(0)}" for path in sorted(sources)
                 for match in private_import.finditer(path.read_text())]
    assert offenders == []
