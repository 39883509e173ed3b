#!/usr/bin/env python3
"""Publishes a report of `augloader experiment all --out DIR`: DIR/report.md becomes
docs/NAME.md (pictures copied to docs/NAME/; NAME is `claims` by default), and for the default
name its table replaces the one between the README's `claims:begin` and `claims:end` markers.

Usage: scripts/claims_to_docs.py DIR [NAME]
"""
import pathlib
import re
import shutil
import sys

root = pathlib.Path(__file__).resolve().parent.parent
src = pathlib.Path(sys.argv[1])
name = sys.argv[2] if len(sys.argv) > 2 else "claims"
report = (src / "report.md").read_text()
pictures = root / "docs" / name
pictures.mkdir(parents=True, exist_ok=True)


def move(m: re.Match) -> str:
    picture = pathlib.Path(m.group(2)).name
    shutil.copyfile(src / m.group(2), pictures / picture)
    return f"![{m.group(1)}]({name}/{picture})"


(root / "docs" / f"{name}.md").write_text(re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", move, report))
if name == "claims":
    table = "\n".join(l for l in report.splitlines() if l.startswith("|"))
    readme = root / "README.md"
    text = readme.read_text()
    begin, end = "<!-- claims:begin -->", "<!-- claims:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{table}\n{end}{tail}")
    print(f"docs/claims.md and the README table from {src / 'report.md'}")
else:
    print(f"docs/{name}.md from {src / 'report.md'}")
