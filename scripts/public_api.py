#!/usr/bin/env python3
"""The public API of a crate, one line per item, from rustdoc's JSON (nightly rustdoc).

    scripts/public_api.py PACKAGE [--features F] [--counts]

Prints `kind path` for every item reachable from the crate's root (the paths rustdoc resolves,
re-exports included) and, for each public type and trait, its public methods as
`method Type::name`. With --counts, prints the totals by kind instead. The lists of two commits
diff cleanly; docs/api.md records the counts.
"""
import argparse
import collections
import json
import os
import subprocess
import sys


def rustdoc_json(package, features):
    target = os.environ.get("AUGLOADER_API_TARGET", "target/api")
    cmd = ["cargo", "+nightly", "rustdoc", "--quiet", "-p", package, "--lib"]
    if features:
        cmd += ["--features", features]
    cmd += ["--", "-Z", "unstable-options", "--output-format", "json"]
    subprocess.run(cmd, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    name = package.replace("-", "_")
    with open(os.path.join(target, "doc", f"{name}.json")) as f:
        return json.load(f)


def items(doc):
    """Every (kind, path) reachable from the root, each re-export its own path."""
    index = doc["index"]
    out = set()

    def kind_of(it):
        return next(iter(it["inner"]))

    def methods(it, path):
        k = kind_of(it)
        if k == "trait":
            ids = it["inner"]["trait"]["items"]
        elif k in ("struct", "enum", "union"):
            ids = []
            for i in it["inner"][k]["impls"]:
                imp = index.get(str(i), {}).get("inner", {}).get("impl")
                if imp and imp["trait"] is None and not imp["blanket_impl"]:
                    ids += imp["items"]
        else:
            return
        for i in ids:
            m = index.get(str(i))
            if m and m["name"] and (k == "trait" or m["visibility"] == "public"):
                out.add(("method", f"{path}::{m['name']}"))

    def walk(mod_id, prefix, seen):
        if mod_id in seen:
            return
        seen = seen | {mod_id}
        for i in index[str(mod_id)]["inner"]["module"]["items"]:
            it = index.get(str(i))
            if it is None or it["visibility"] != "public":
                continue
            k = kind_of(it)
            if k == "use":
                u = it["inner"]["use"]
                target = index.get(str(u["id"])) if u["id"] is not None else None
                if target is None:
                    continue  # a re-export from another crate
                if u["is_glob"]:
                    walk(u["id"], prefix, seen)
                    continue
                it, k, i = target, kind_of(target), u["id"]
                name = u["name"]
            else:
                name = it["name"]
            path = f"{prefix}::{name}"
            if k == "impl":
                continue
            out.add((k, path))
            if k == "module":
                walk(i, path, seen)
            elif k == "enum":
                for v in it["inner"]["enum"]["variants"]:
                    out.add(("variant", f"{path}::{index[str(v)]['name']}"))
            methods(it, path)

    walk(doc["root"], index[str(doc["root"])]["name"], frozenset())
    return sorted(out, key=lambda x: (x[1], x[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("package")
    ap.add_argument("--features", default="")
    ap.add_argument("--counts", action="store_true")
    a = ap.parse_args()
    found = items(rustdoc_json(a.package, a.features))
    if a.counts:
        counts = collections.Counter(k for k, _ in found)
        for k, n in sorted(counts.items()):
            print(f"{k:10} {n}")
        print(f"{'total':10} {len(found)}")
        names = collections.Counter(
            p.rsplit("::", 1)[1] for k, p in found if k not in ("method", "variant", "module")
        )
        several = sorted(n for n, c in names.items() if c > 1)
        print(f"{'several paths':10} {len(several)} {' '.join(several)}")
    else:
        for k, p in found:
            print(f"{k:10} {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
