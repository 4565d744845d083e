//! No import cycles between the modules of the library and of the command line.
//!
//! Every `src/**/*.rs` file is a module (a directory's `mod.rs` and each of its children are
//! separate modules); module `a` depends on module `b` when `a` names something `b` defines, by
//! a `use crate::…`, `use super::…`, `use self::…` or `use child::…` declaration or by a
//! `crate::…` or `super::…` path in its code. A path through a re-export (`pub use x::Y` in a
//! `mod.rs` or `lib.rs`) counts as naming the module that defines `Y`. A child file that takes
//! its parent whole (`use super::*`), which exists only to split the parent, counts as the
//! parent. Test modules (`#[cfg(test)]`) are left out: a test sits above what it tests and
//! may use anything. The test fails naming every cycle, in either crate.

mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use read::{ModPath, Module, Scope, read_crate};

/// The module a path written in module `from` (at inline depth `scope`) names: the module that
/// defines what it ends on, re-exports followed. `None` for other crates.
fn resolve(
    modules: &BTreeMap<ModPath, Module>,
    from: &ModPath,
    scope: Scope,
    segments: &[String],
    hops: usize,
) -> Option<ModPath> {
    if hops > 32 {
        return None;
    }
    // Inline modules sit inside the file's module: `super` first climbs out of them.
    let mut inline_left = scope;
    let mut at: ModPath = from.clone();
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            at = Vec::new();
            rest = &rest[1..];
        }
        Some("super") | Some("self") => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" if inline_left > 0 => inline_left -= 1,
                    "super" => {
                        at.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        Some(first) if modules.get(&at).is_some_and(|m| m.children.contains(first)) => {}
        _ => return None,
    }
    // Descend through child modules; the first other name is an item of `at`, unless `at`
    // re-exports it.
    while let Some(first) = rest.first() {
        let module = modules.get(&at)?;
        if module.children.contains(first) {
            at.push(first.clone());
            rest = &rest[1..];
            continue;
        }
        let reexport = module
            .uses
            .iter()
            .find(|(name, _, scope)| *scope == 0 && name == first);
        if let Some((_, path, _)) = reexport {
            let mut followed = path.clone();
            followed.extend(rest[1..].iter().cloned());
            return resolve(modules, &at, 0, &followed, hops + 1);
        }
        break;
    }
    Some(at)
}

/// Each module's node: itself, or for a file that takes its parent whole, its parent's.
fn node(modules: &BTreeMap<ModPath, Module>, path: &ModPath) -> ModPath {
    let mut path = path.clone();
    while modules.get(&path).is_some_and(|m| m.splits_parent) && !path.is_empty() {
        path.pop();
    }
    path
}

/// The dependency graph of one crate between nodes, each edge with the file that makes it.
fn graph(modules: &BTreeMap<ModPath, Module>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (path, module) in modules {
        let from = node(modules, path);
        edges.entry(from.clone()).or_default();
        let named = module
            .uses
            .iter()
            .map(|(_, p, scope)| (p, *scope))
            .chain(module.paths.iter().map(|(p, scope)| (p, *scope)));
        for (segments, scope) in named {
            let splitting = segments.len() == 1 && segments[0] == "super" && scope == 0;
            if splitting && module.splits_parent {
                continue;
            }
            if let Some(target) = resolve(modules, path, scope, segments, 0) {
                let to = node(modules, &target);
                if to != from {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    edges
}

/// The strongly connected components of more than one node (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.found
}

/// One cycle through a component, as files: `a.rs → b.rs → a.rs`.
fn describe(
    modules: &BTreeMap<ModPath, Module>,
    edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
    component: &[ModPath],
) -> String {
    let members: BTreeSet<&ModPath> = component.iter().collect();
    let start = component.iter().min().cloned().unwrap_or_default();
    // Breadth first from the start back to itself, inside the component.
    let mut previous: BTreeMap<ModPath, ModPath> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    let mut end = None;
    while let Some(v) = queue.pop_front() {
        for w in edges.get(&v).into_iter().flatten() {
            if !members.contains(w) {
                continue;
            }
            if *w == start {
                end = Some(v.clone());
                queue.clear();
                break;
            }
            if !previous.contains_key(w) {
                previous.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    let mut back = Vec::new();
    let mut at = end.unwrap_or_else(|| start.clone());
    while at != start {
        back.push(at.clone());
        at = previous.get(&at).cloned().unwrap_or_else(|| start.clone());
    }
    let mut cycle = vec![start.clone()];
    cycle.extend(back.into_iter().rev());
    cycle.push(start);
    let file = |p: &ModPath| {
        modules
            .get(p)
            .map_or_else(|| p.join("::"), |m| m.file.clone())
    };
    cycle.iter().map(file).collect::<Vec<_>>().join(" → ")
}

#[test]
fn no_module_is_in_an_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for crate_root in ["src/lib.rs", "src/main.rs"] {
        let mut modules = BTreeMap::new();
        read_crate(root, &root.join(crate_root), Vec::new(), &mut modules);
        assert!(
            modules.len() > 10,
            "only {} modules read from {crate_root}",
            modules.len()
        );
        let edges = graph(&modules);
        for component in cycles(&edges) {
            let cycle = describe(&modules, &edges, &component);
            let members: Vec<String> = component.iter().map(|p| p.join("::")).collect();
            found.push(format!(
                "{crate_root}: {cycle} (all of: {})",
                members.join(", ")
            ));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_parser_finds_a_planted_cycle() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a folder");
        std::fs::write(path, text).expect("a file");
    };
    write(
        "lib.rs",
        "pub mod a;\npub mod b;\npub mod d;\n#[cfg(test)]\nmod c;\npub use a::Thing;\n",
    );
    // Test modules may name anything: `c.rs` is left out, and so is `b`'s test module naming
    // `d`, which names `b`.
    write("c.rs", "use crate::a::Thing;\n");
    write("d.rs", "use crate::b::Other;\n");
    write("a/mod.rs", "mod split;\npub struct Thing;\n");
    // A split child of `a` naming `b`, and `b` naming `a`'s item through the crate root's
    // re-export: a → b → a.
    write(
        "a/split.rs",
        "use super::*;\nfn f() -> crate::b::Other { todo!() }\n",
    );
    write(
        "b.rs",
        "// use crate::nothing;\nuse crate::{Thing as T};\npub struct Other;\n\
         #[cfg(test)]\nmod tests {\n    use crate::d::*;\n}\n",
    );
    let mut modules = BTreeMap::new();
    read_crate(
        dir.path(),
        &dir.path().join("lib.rs"),
        Vec::new(),
        &mut modules,
    );
    let edges = graph(&modules);
    assert!(!modules.contains_key(&vec!["c".to_string()]));
    let found = cycles(&edges);
    assert_eq!(found.len(), 1, "{edges:?}");
    assert_eq!(
        describe(&modules, &edges, &found[0]),
        "a/mod.rs → b.rs → a/mod.rs"
    );
}
