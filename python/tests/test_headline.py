"""README's headline numbers stay equal to the docs' tables they cite: `scripts/headline.py`
passes on the repository and fails, naming the row, once a README number or a table drifts."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "headline.py"


def _copy(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for page in (ROOT / "docs").glob("*.md"):
        shutil.copy(page, tmp_path / "docs" / page.name)
    return tmp_path


def _run(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(repo)], capture_output=True, text=True)


def test_readme_headline_numbers_equal_the_docs_tables():
    r = _run(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_drifted_readme_number_or_table_fails(tmp_path):
    repo = _copy(tmp_path)
    readme = (repo / "README.md").read_text()
    assert "4.4-6.0x" in readme
    (repo / "README.md").write_text(readme.replace("4.4-6.0x", "5-7x", 1))
    r = _run(repo)
    assert r.returncode == 1 and "torchvision" in r.stdout and "4.4-6.0x" in r.stdout, r.stdout
    # A table measured again without README following: the Python row's span moves.
    (repo / "README.md").write_text(readme)
    python = (repo / "docs" / "python.md").read_text()
    (repo / "docs" / "python.md").write_text(python.replace("| 1.048 |", "| 1.148 |", 1))
    r = _run(repo)
    assert r.returncode == 1 and "1.04-1.15" in r.stdout, r.stdout
