//! Reading a crate's modules from its files: each file's `mod` declarations, the paths its
//! `use` declarations name and the `crate::…` and `super::…` paths in its code (comments,
//! strings and test modules left out).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module by its path from its crate's root: `["gpu", "pack", "step"]`.
pub type ModPath = Vec<String>;

/// One file module of a crate.
#[derive(Debug, Default)]
pub struct Module {
    pub file: String,
    /// The `mod` declarations of the file, inline ones excluded.
    pub children: BTreeSet<String>,
    /// `use` declarations as (visible name, full path as written, relative to the module),
    /// re-exports included; a glob is the name `*`.
    pub uses: Vec<(String, Vec<String>, Scope)>,
    /// `crate::…` and `super::…` paths written in the code.
    pub paths: Vec<(Vec<String>, Scope)>,
    /// Takes its parent whole (`use super::*` outside any inline module).
    pub splits_parent: bool,
}

/// Where in the file a path was written: how many inline modules (`mod tests { … }`) deep.
pub type Scope = usize;

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
pub fn read_crate(
    root: &Path,
    file: &Path,
    path: ModPath,
    modules: &mut BTreeMap<ModPath, Module>,
) {
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
