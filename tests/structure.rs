//! The workspace's shape: its crates are layered (loader <- trainer <- command line; loader <-
//! Python binding) and in no crate do two modules import each other, directly or around a loop
//! (data flows one way: sources -> decode -> transforms -> sample -> loader -> batch, then the
//! trainer's tensors -> step -> tta). Module edges come from `crate::` and `super::` paths; a
//! module's own submodules and parents do not count (a parent re-exports its children).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path of a file under src/: `src/train/tta.rs` -> `train::tta`, `src/source/mod.rs` ->
/// `source`, `src/lib.rs` -> ``.
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules a file's code names, resolved to the longest known module path.
fn imports(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let mut out = BTreeSet::new();
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        for (at, _) in code.match_indices(prefix) {
            // `crate::a::b::Item` or `super::a::{...}`: the path's identifiers.
            let rest = &code[at + prefix.len()..];
            let idents: Vec<&str> = rest
                .split("::")
                .map(|s| {
                    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap()
                })
                .take_while(|s| !s.is_empty())
                .collect();
            let mut path = base.to_string();
            let mut best = base.to_string();
            for id in idents {
                path = if path.is_empty() {
                    id.to_string()
                } else {
                    format!("{path}::{id}")
                };
                if known.contains(&path) {
                    best = path.clone();
                }
            }
            out.insert(best);
        }
    }
    out
}

fn related(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| y.is_empty() || x == y || x.starts_with(&format!("{y}::"));
    under(a, b) || under(b, a)
}

/// A cycle in the graph, as a list of modules, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    return Some(stack[at..].iter().cloned().chain([m.clone()]).collect());
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n.as_str()) {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The module graph of the crate whose sources are in `src` (relative to the workspace root).
fn module_graph(src: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            // Code only: a doc link is not an import.
            let code: String = std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (module_of(f.strip_prefix(&src).unwrap()), code)
        })
        .collect();
    let known: BTreeSet<String> = modules.iter().map(|(m, _)| m.clone()).collect();
    modules
        .iter()
        .map(|(m, code)| {
            let deps = imports(m, code, &known)
                .into_iter()
                .filter(|d| !related(m, d))
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let g = module_graph("src");
    assert!(
        g.contains_key("loader") && g["loader"].contains("sample"),
        "{g:?}"
    );
    let t = module_graph("train/src");
    assert!(t.contains_key("tta") && t["tta"].contains("step"), "{t:?}");
    for (src, g) in [
        ("src", g),
        ("train/src", t),
        ("cli/src", module_graph("cli/src")),
        ("python/src", module_graph("python/src")),
    ] {
        if let Some(cycle) = find_cycle(&g) {
            panic!("import cycle in {src}: {}", cycle.join(" -> "));
        }
    }
}

/// The workspace's members and the members each depends on, from their Cargo.toml files.
fn crate_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let members = [".", "train", "cli", "python"];
    let name = |dir: &str| {
        let toml = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
        let package = toml.split("[package]").nth(1).unwrap();
        let line = package.lines().find(|l| l.starts_with("name = ")).unwrap();
        line.trim_start_matches("name = ")
            .trim_matches('"')
            .to_string()
    };
    let names: Vec<String> = members.iter().map(|m| name(m)).collect();
    members
        .iter()
        .zip(&names)
        .map(|(dir, n)| {
            let toml = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
            // Normal dependencies only: the [dependencies] table up to the next table.
            let deps = toml
                .split("\n[dependencies]\n")
                .nth(1)
                .map(|d| d.split("\n[").next().unwrap().to_string())
                .unwrap_or_default();
            let uses = names
                .iter()
                .filter(|other| {
                    *other != n
                        && deps.lines().any(|l| {
                            l.starts_with(&format!("{other} "))
                                || l.starts_with(&format!("{other}."))
                        })
                })
                .cloned()
                .collect();
            (n.clone(), uses)
        })
        .collect()
}

/// One crate per concern, layered: the loader depends on no other member (no libtorch), the
/// trainer on the loader, the command line on both, the Python binding on the loader only.
#[test]
fn the_crates_are_layered_without_a_cycle() {
    let g = crate_graph();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(g["augloader"], set(&[]), "{g:?}");
    assert_eq!(g["augloader-train"], set(&["augloader"]), "{g:?}");
    assert_eq!(
        g["augloader-cli"],
        set(&["augloader", "augloader-train"]),
        "{g:?}"
    );
    assert_eq!(g["augloader-python"], set(&["augloader"]), "{g:?}");
    assert!(find_cycle(&g).is_none());
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let known: BTreeSet<String> = ["a", "b", "b::c"].map(String::from).into();
    let a = imports("a", "use crate::b::c::Thing;", &known);
    let c = imports("b::c", "use super::super::a; use crate::a::f;", &known);
    assert_eq!(a, ["b::c".to_string()].into());
    let g: BTreeMap<String, BTreeSet<String>> =
        [("a".to_string(), a), ("b::c".to_string(), c)].into();
    assert!(find_cycle(&g).is_some(), "{g:?}");
}

/// Whether `line` calls `path` itself (`File::open(`, not `ListFile::open(`).
fn calls(line: &str, path: &str) -> bool {
    line.match_indices(path).any(|(at, _)| {
        !line[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Outside data is opened only through the file gate (src/file.rs: regular files only, a size
/// limit per kind): no other library code calls `fs::read`, `fs::read_to_string` or
/// `File::open` (unit tests may).
#[test]
fn only_the_file_gate_opens_outside_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.ends_with("src/file.rs")) {
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            let opens = ["fs::read(", "fs::read_to_string(", "File::open("]
                .iter()
                .any(|p| calls(line, p));
            if opens && !line.starts_with("//") {
                found.push(format!("{}:{}: {line}", f.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "outside the file gate:\n{}",
        found.join("\n")
    );
}
