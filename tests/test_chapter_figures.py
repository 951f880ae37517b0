"""Every diagram a chapter shows exists, parses as SVG, has a title, and is shown somewhere."""
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
FIGURES = CHAPTERS / "figures"
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\((figures/[^)\s]+)\)")


def linked_figures():
    """(chapter name, relative path) for every image link in a markdown cell."""
    for notebook in sorted(CHAPTERS.glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                for target in IMAGE_LINK.findall("".join(cell["source"])):
                    yield notebook.name, target


def test_every_linked_figure_exists():
    missing = [(chapter, target) for chapter, target in linked_figures() if not (CHAPTERS / target).is_file()]
    assert not missing, f"image links to files that do not exist: {missing}"


def test_every_figure_is_valid_svg_with_a_title_and_is_used():
    used = {target for _, target in linked_figures()}
    for svg in sorted(FIGURES.glob("*.svg")):
        root = ElementTree.parse(svg).getroot()
        assert root.tag.endswith("svg"), svg.name
        assert root.find("{http://www.w3.org/2000/svg}title") is not None, f"{svg.name} has no <title> (screen readers, GitHub)"
        assert f"figures/{svg.name}" in used, f"{svg.name} is not shown by any chapter"
