"""The "Run it yourself" page is generated from the parameters cells and the committed copy is current."""

from pathlib import Path

from lungcl.book import parameters_page

ROOT = Path(__file__).resolve().parents[1]


def test_page_lists_every_parameter_and_is_current():
    text = parameters_page.render_page(ROOT)
    assert "| `ewc_lambda` | `None` | EWC strength (None: the profile default) |" in text
    assert "## 00_first_demo:" in text and "## 07_discussion:" in text
    assert (ROOT / parameters_page.PAGE).read_text() == text, "run `lungcl book` (or parameters_page.write_page) to refresh it"


def test_comment_parsing(tmp_path):
    nb = tmp_path / "x.py"
    nb.write_text('# %% tags=["parameters"]\nfolds = [0]  # cv folds\nseed = 0\n')
    assert parameters_page.chapter_parameters(nb) == [("folds", "[0]", "cv folds"), ("seed", "0", "")]
