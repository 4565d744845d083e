//! No import cycles between the modules of `src/gpu/`.
//!
//! Every `src/**/*.rs` file is a module (a directory's `mod.rs` and each of its children are
//! separate modules); module `a` depends on module `b` when `a` names something `b` defines, by
//! a `use crate::…`, `use super::…`, `use self::…` or `use child::…` declaration or by a
//! `crate::…` or `super::…` path in its code. A path through a re-export (`pub use x::Y` in a
//! `mod.rs` or `lib.rs`) counts as naming the module that defines `Y`. A child file that takes
//! its parent whole (`use super::*`), which exists only to split the parent, counts as the
//! parent. Test modules (`#[cfg(test)]`) are left out: a test sits above what it tests and
//! may use anything. The test fails naming any cycle that passes through `src/gpu/`, and
//! prints those elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module by its path from its crate's root: `["gpu", "pack", "step"]`.
type ModPath = Vec<String>;

/// One file module of a crate.
#[derive(Debug, Default)]
struct Module {
    file: String,
    /// The `mod` declarations of the file, inline ones excluded.
    children: BTreeSet<String>,
    /// `use` declarations as (visible name, full path as written, relative to the module),
    /// re-exports included; a glob is the name `*`.
    uses: Vec<(String, Vec<String>, Scope)>,
    /// `crate::…` and `super::…` paths written in the code.
    paths: Vec<(Vec<String>, Scope)>,
    /// Takes its parent whole (`use super::*` outside any inline module).
    splits_parent: bool,
}

/// Where in the file a path was written: how many inline modules (`mod tests { … }`) deep.
type Scope = usize;

/// The file's text with comments, strings and character literals blanked out.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !ident_before(&chars, i) {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('x', '\n', '\''), or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The paths one `use` tree names, as (visible name, segments): `a::{b, c::d as e, f::*}` gives
/// `(b, a::b)`, `(e, a::c::d)` and `(*, a::f)`.
fn expand(tree: &str) -> Vec<(String, Vec<String>)> {
    // One space between words (`d as e`), none around the punctuation.
    let mut tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    for punctuation in ["::", "{", "}", ","] {
        tree = tree
            .replace(&format!(" {punctuation}"), punctuation)
            .replace(&format!("{punctuation} "), punctuation);
    }
    let mut out = Vec::new();
    expand_into(&tree, &[], &mut out);
    out
}

fn expand_into(tree: &str, prefix: &[String], out: &mut Vec<(String, Vec<String>)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let mut base = prefix.to_vec();
        base.extend(head);
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_into(&inner[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand_into(&inner[start..], &base, out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path.trim(), Some(alias.trim().to_string())),
        None => (tree, None),
    };
    let mut segments = prefix.to_vec();
    segments.extend(path.split("::").map(String::from));
    let last = segments.last().cloned().unwrap_or_default();
    if last == "*" {
        segments.pop();
        out.push(("*".into(), segments));
    } else if last == "self" {
        segments.pop();
        let name = alias.unwrap_or_else(|| segments.last().cloned().unwrap_or_default());
        out.push((name, segments));
    } else {
        out.push((alias.unwrap_or(last), segments));
    }
}

/// Reads the file of module `path` (and, through its `mod` declarations, its children's).
fn read_crate(root: &Path, file: &Path, path: ModPath, modules: &mut BTreeMap<ModPath, Module>) {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let code = code_only(&text);
    let mut module = Module {
        file: file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string(),
        ..Module::default()
    };
    // Walk the code statement by statement, tracking inline modules by their braces; a test
    // module's code is skipped.
    let mut inline: Vec<usize> = Vec::new();
    let mut test_module: Option<usize> = None;
    let mut depth = 0usize;
    let mut statement = String::new();
    for c in code.chars() {
        let testing = test_module.is_some();
        match c {
            '{' if !is_use(&statement) => {
                if opens_inline_mod(&statement) {
                    inline.push(depth);
                    if is_test_only(&statement) && test_module.is_none() {
                        test_module = Some(depth);
                    }
                }
                if !testing {
                    collect_paths(&statement, inline.len(), &mut module);
                }
                statement.clear();
                depth += 1;
            }
            '}' if !is_use(&statement) => {
                if !testing {
                    collect_paths(&statement, inline.len(), &mut module);
                }
                statement.clear();
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                if test_module == Some(depth) {
                    test_module = None;
                }
            }
            ';' => {
                statement.push(c);
                if !testing && !is_test_only(&statement) {
                    finish(&statement, inline.len(), &mut module);
                }
                statement.clear();
            }
            _ => statement.push(c),
        }
    }
    collect_paths(&statement, inline.len(), &mut module);
    let dir = if file
        .file_name()
        .is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs")
    {
        file.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        file.with_extension("")
    };
    let children: Vec<String> = module.children.iter().cloned().collect();
    modules.insert(path.clone(), module);
    for child in children {
        let flat = dir.join(format!("{child}.rs"));
        let nested = dir.join(&child).join("mod.rs");
        let child_file: PathBuf = if flat.exists() { flat } else { nested };
        let mut child_path = path.clone();
        child_path.push(child);
        read_crate(root, &child_file, child_path, modules);
    }
}

/// Whether a statement under way is a `use` declaration (whose braces group paths).
fn is_use(statement: &str) -> bool {
    let words: Vec<&str> = statement.split_whitespace().collect();
    words.iter().take(3).any(|w| *w == "use")
        && !statement.contains("fn ")
        && !statement.contains('=')
}

/// Whether an item is compiled for tests only (`#[cfg(test)]`).
fn is_test_only(statement: &str) -> bool {
    statement.replace(' ', "").contains("#[cfg(test)]")
}

/// Whether a statement opens an inline module (`mod tests` before its `{`).
fn opens_inline_mod(statement: &str) -> bool {
    let words: Vec<&str> = statement.split_whitespace().collect();
    words.len() >= 2 && words[words.len() - 2] == "mod"
}

/// Records a finished statement: a `mod` declaration, a `use` declaration, or code.
fn finish(statement: &str, scope: Scope, module: &mut Module) {
    let text = statement.trim().trim_end_matches(';').trim();
    // Attributes before the item (`#[cfg(test)]`).
    let mut item = text;
    while item.starts_with("#[") {
        let end = item.find(']').map_or(item.len(), |e| e + 1);
        item = item[end..].trim_start();
    }
    let visibility_free = strip_visibility(item);
    if let Some(name) = visibility_free.strip_prefix("mod ") {
        if scope == 0 {
            module.children.insert(name.trim().to_string());
        }
        return;
    }
    if let Some(tree) = visibility_free.strip_prefix("use ") {
        for (name, path) in expand(tree) {
            if scope == 0 && name == "*" && path == ["super"] {
                module.splits_parent = true;
            }
            module.uses.push((name, path, scope));
        }
        return;
    }
    collect_paths(statement, scope, module);
}

fn strip_visibility(item: &str) -> &str {
    let item = item.trim_start();
    if let Some(rest) = item.strip_prefix("pub(") {
        return rest.split_once(')').map_or(rest, |(_, r)| r.trim_start());
    }
    item.strip_prefix("pub ").unwrap_or(item).trim_start()
}

/// Records every `crate::…` and `super::…` path in a piece of code.
fn collect_paths(code: &str, scope: Scope, module: &mut Module) {
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts = |word: &str| {
            word.chars()
                .enumerate()
                .all(|(k, c)| bytes.get(i + k) == Some(&c))
                && !ident_before(&bytes, i)
                && bytes.get(i + word.len()) == Some(&':')
        };
        if starts("crate") || starts("super") {
            let mut j = i;
            while j < bytes.len()
                && (bytes[j].is_alphanumeric() || bytes[j] == '_' || bytes[j] == ':')
            {
                j += 1;
            }
            let path: String = bytes[i..j].iter().collect();
            let segments: Vec<String> = path
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if segments.len() > 1 {
                module.paths.push((segments, scope));
            }
            i = j;
        } else {
            i += 1;
        }
    }
}

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
fn no_module_of_src_gpu_is_in_an_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut in_gpu = Vec::new();
    for crate_root in ["src/lib.rs", "src/main.rs"] {
        let mut modules = BTreeMap::new();
        read_crate(root, &root.join(crate_root), Vec::new(), &mut modules);
        assert!(
            modules
                .keys()
                .any(|p| p.first().is_some_and(|m| m == "gpu"))
                || crate_root == "src/main.rs",
            "the library's gpu module was not found"
        );
        let edges = graph(&modules);
        for component in cycles(&edges) {
            let cycle = describe(&modules, &edges, &component);
            if component
                .iter()
                .any(|p| p.first().is_some_and(|m| m == "gpu"))
            {
                let members: Vec<String> = component.iter().map(|p| p.join("::")).collect();
                in_gpu.push(format!("{cycle} (all of: {})", members.join(", ")));
            } else {
                println!("an import cycle outside src/gpu/ ({crate_root}): {cycle}");
            }
        }
    }
    assert!(
        in_gpu.is_empty(),
        "import cycles through src/gpu/:\n{}",
        in_gpu.join("\n")
    );
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
