"""Every Python code block of README.md and docs/python.md runs as written (CPU, a small
dataset in ./data), and the examples in examples/python run with their frameworks."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_folder

ROOT = Path(__file__).parent.parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "python.md"]


def blocks():
    for doc in DOCS:
        text = doc.read_text()
        for k, m in enumerate(re.finditer(r"```python\n(.*?)```", text, re.S)):
            yield pytest.param(m.group(1), id=f"{doc.name}-{k}")


def run(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("docs")
    make_folder(d / "data", classes=3, per_class=8)
    return d


def test_the_docs_have_python_blocks():
    assert len(list(blocks())) >= 2


@pytest.mark.parametrize("code", list(blocks()))
def test_a_code_block_runs_as_written(code, workdir):
    script = workdir / "block.py"
    script.write_text(code)
    run([sys.executable, str(script)], workdir)


@pytest.mark.parametrize("name", ["lightning_example.py", "accelerate_example.py"])
def test_the_framework_examples_run(name, workdir):
    pytest.importorskip(name.split("_")[0])
    out = run([sys.executable, str(ROOT / "examples" / "python" / name), "data",
               "--epochs", "1"], workdir)
    assert "val top-1" in out
