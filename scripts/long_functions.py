"""Lists functions longer than N lines (default 80) in src/, tests/, benches/ and examples/;
exits 1 if there is one. A function ends at the closing brace at its own indentation."""
import glob
import re
import sys

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 80
start = re.compile(r"^(\s*)(pub(\([^)]*\))? )?(const )?(unsafe )?(async )?fn (\w+)")
long = []
files = sorted(sum((glob.glob(f"{d}/**/*.rs", recursive=True) for d in ["src", "tests", "benches", "examples", "python/src"]), []))
for path in files:
    lines = open(path, encoding="utf-8").read().split("\n")
    for i, line in enumerate(lines):
        m = start.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent, name = m.group(1), m.group(7)
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != indent + "}":
            j += 1
        if j - i + 1 > limit:
            long.append(f"{path}:{i + 1}: {name} has {j - i + 1} lines")
for l in long:
    print(l)
if long:
    print(f"functions over {limit} lines (above): split them along their seams", file=sys.stderr)
    sys.exit(1)
