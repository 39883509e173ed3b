#!/usr/bin/env python3
"""Checks that README's headline numbers equal the docs' tables they cite.

    scripts/headline.py [REPO]

Each row of README's "Headline numbers" table cites a page. For each, the numbers are extracted
from that page's tables (the medians, ratios and accuracies measured there) and formatted as
README states them; a README cell that says anything else fails, naming the row, what README
says and what the page's table gives. Rows without a rule of their own must at least quote only
numbers that appear in the page they cite. Exit status 1 on any difference (scripts/test.sh runs
this in its first tier).
"""
import re
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path


def tables(text):
    """Every Markdown table of `text`, as (header cells, rows of cells), with the line before."""
    out, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: "):
            head = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, j = [], i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append([c.strip() for c in lines[j].strip("|").split("|")])
                j += 1
            out.append((head, rows))
            i = j
        else:
            i += 1
    return out


def table_with(text, *columns, after=""):
    """The first table whose header holds every one of `columns`, after the text `after`."""
    for head, rows in tables(text.split(after, 1)[1] if after else text):
        if all(c in head for c in columns):
            return head, rows
    raise SystemExit(f"headline: no table with columns {columns}")


def cell(head, rows, row_start, column):
    """The cell of `column` in the row whose first cell starts with `row_start`."""
    for r in rows:
        if r[0] == row_start or r[0].startswith(row_start + " ") and row_start.endswith("train"):
            return r[head.index(column)]
    raise SystemExit(f"headline: no row {row_start!r}")


def numbers(s):
    return [float(x) for x in re.findall(r"\d+\.\d+|\d+", s.replace("*", ""))]


def fmt(x, digits):
    """`x` rounded half up, as a reader rounds a table's 3.25 to 3.3."""
    q = Decimal(1).scaleb(-digits)
    return str(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))


def span(values, digits):
    return f"{fmt(min(values), digits)}-{fmt(max(values), digits)}"


def expected(repo):
    """README's row text (its first cell, shortened) -> the result the docs' tables give."""
    perf = (repo / "docs/performance.md").read_text()
    results = (repo / "docs/results.md").read_text()
    rules = {}
    # ResNet-20 on the synthetic set: the bold top-1 of docs/results.md.
    top1 = re.search(r"validation top-1 \*\*(\d\.\d+)\*\*", results).group(1)
    rules["scripts/run.sh"] = (f"validation top-1 {top1}", "contains")
    # Against torchvision: every run of the augmenting pipelines, and of decode alone.
    head, rows = table_with(perf, "pipeline", "torchvision img/s", "ratio")
    aug = [x for r in rows if r[0] != "decode" for x in numbers(r[head.index("ratio")])]
    dec = numbers(cell(head, rows, "decode", "ratio"))
    tv = f"{span(aug, 1)}x ({span(dec, 1)}x decode only)"
    rules["loader throughput against torchvision"] = (tv, "equals")
    # Against DALI on restart-marker shards: resnet-train / DALI's decode-only rate.
    head, rows = table_with(
        perf, "pipeline", "augloader / DALI decode", after="with a restart marker after every MCU"
    )
    dali = numbers(cell(head, rows, "resnet-train", "augloader / DALI decode"))
    dali_text = f"{span(dali, 2)}x DALI's decode-only rate for `resnet-train` on restart-marker shards"
    rules["against NVIDIA DALI"] = (dali_text, "equals")
    # Today's recipes: tv2-train against the anchors' own, and the cost of the recipe's ops.
    head, rows = table_with(perf, "what", "/ torchvision tv2-train", "/ DALI tv2-train")
    tv2 = float(cell(head, rows, "augloader tv2-train", "/ torchvision tv2-train"))
    tv2_dali = float(cell(head, rows, "augloader tv2-train", "/ DALI tv2-train"))
    ta = float(
        cell(head, rows, "augloader resnet-train --auto-augment ta-wide --random-erase 0.1", "/ plain resnet-train")
    )
    recipe = (
        f"{fmt(tv2, 1)}x torchvision v2 + DataLoader, {fmt(tv2_dali, 1)}x DALI's CPU pipeline; "
        f"`resnet-train` + TrivialAugmentWide + erasing at {fmt(ta, 2)}x plain `resnet-train`"
    )
    rules["torchvision's v2 recipe"] = (recipe, "equals")
    # Python against bench: the two "/ bench" columns of docs/python.md's throughput table.
    python = (repo / "docs/python.md").read_text()
    head, rows = table_with(python, "pipeline", "augloader bench img/s", "/ bench")
    cols = [i for i, h in enumerate(head) if h == "/ bench"]
    u8, f32 = ([float(r[i]) for r in rows] for i in cols)
    rules["Python iteration against `augloader bench`"] = (f"{span(u8, 2)}; {span(f32, 2)}", "equals")
    return rules


def main():
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    readme = (repo / "README.md").read_text()
    section = readme.split("## Headline numbers", 1)[1].split("\n## ", 1)[0]
    (head, rows), = tables(section)
    rules = expected(repo)
    failed, checked = [], 0
    for what, result, where in rows:
        page = re.search(r"\]\(([^)]+)\)", where).group(1)
        rule = next((rules[k] for k in rules if what.startswith(k) or k in what), None)
        if rule is not None:
            want, mode = rule
            ok = result == want if mode == "equals" else want in result
        else:
            want = "only numbers that the page quotes"
            text = (repo / page).read_text()
            found = set(re.findall(r"\d+\.\d+|\d+", text))
            ok = all(n in found for n in re.findall(r"\d+\.\d+|\d+", result))
        checked += 1
        if not ok:
            failed.append(f"{what}: README says {result!r}; {page} gives {want!r}")
    for k in rules:
        if not any(r[0].startswith(k) or k in r[0] for r in rows):
            failed.append(f"no README headline row for {k!r}")
    if failed:
        print("README's headline numbers differ from the docs' tables:", *failed, sep="\n  ")
        return 1
    print(f"headline: {checked} README rows agree with the tables they cite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
