#!/usr/bin/env python3
"""Publishes a report of `augloader experiment all --out DIR`: DIR/report.md becomes
docs/claims.md (pictures copied to docs/claims/), and its table replaces the one between the
README's `claims:begin` and `claims:end` markers.

Usage: scripts/claims_to_docs.py DIR
"""
import pathlib
import re
import shutil
import sys

root = pathlib.Path(__file__).resolve().parent.parent
src = pathlib.Path(sys.argv[1])
report = (src / "report.md").read_text()
pictures = root / "docs" / "claims"
pictures.mkdir(parents=True, exist_ok=True)


def move(m: re.Match) -> str:
    name = pathlib.Path(m.group(2)).name
    shutil.copyfile(src / m.group(2), pictures / name)
    return f"![{m.group(1)}](claims/{name})"


(root / "docs" / "claims.md").write_text(re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", move, report))
table = "\n".join(l for l in report.splitlines() if l.startswith("|"))
readme = root / "README.md"
text = readme.read_text()
begin, end = "<!-- claims:begin -->", "<!-- claims:end -->"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
readme.write_text(f"{head}{begin}\n{table}\n{end}{tail}")
print(f"docs/claims.md and the README table from {src / 'report.md'}")
