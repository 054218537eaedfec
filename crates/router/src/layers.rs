//! The router's architecture as a test: its rooms (top-level modules) sit on
//! layers, and a file may name only rooms on lower layers or its own; inside
//! a room, files import their siblings and children but never form a cycle
//! (a child does not import its parent's module file). Read from the source
//! text of `src/`, so it holds for code that compiles either way; a new room
//! or a new exception goes in [`LAYERS`] or [`ALLOWED`] with its reason.
//!
//! `cargo test -p signalbox-router layers` runs it; a failure names the file,
//! the room it imports and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers from the bottom up; rooms on one layer do not import each other.
const LAYERS: &[&[&str]] = &[
    &["clock", "telemetry", "http_status"],
    &["config"],
    &["metrics", "nats"],
    &["plugins", "group"],
    &["pipeline"],
    &["shared"],
    &["delivery", "sources"],
    &["ownership"],
    &["api"],
    &["service"],
    &["lib"],
];

/// Imports that break the layering on purpose: (from file, to room, why).
const ALLOWED: &[(&str, &str, &str)] = &[];

/// A module path (`api::http`) and its file.
struct Module {
    path: Vec<String>,
    file: PathBuf,
}

fn modules(src: &Path) -> Vec<Module> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap_or(&p);
            let mut path: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if path.last().is_some_and(|l| l == "mod") {
                path.pop();
            }
            if path == ["lib"] {
                path.clear();
            }
            out.push(Module { path, file: p });
        }
    }
    out
}

/// The code of a file without its tests (from the first `#[cfg(test)]`, which
/// this crate keeps at the end of a file) and without comments.
fn code(text: &str) -> String {
    let body = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    body.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path a file names: `crate::a::b`, `super::x`, `self::x`, and
/// its `mod x;` children (`use` groups are expanded one level deep).
fn references(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // The module that `super` and `self` are relative to.
    let here: Vec<String> = module.to_vec();
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for (start, base) in [
        ("crate::", Vec::new()),
        ("super::", parent.clone()),
        ("self::", here.clone()),
    ] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b':') {
                continue;
            }
            let mut path = base.clone();
            let mut rest = &code[from..];
            loop {
                let end = rest
                    .bytes()
                    .position(|c| !is_ident(c))
                    .unwrap_or(rest.len());
                if end == 0 {
                    if rest.starts_with('{') {
                        // `use x::{a, b::c}`: each first segment.
                        let close = rest.find('}').unwrap_or(rest.len());
                        for item in rest[1..close].split(',') {
                            let first: String = item
                                .trim()
                                .bytes()
                                .take_while(|c| is_ident(*c))
                                .map(char::from)
                                .collect();
                            if !first.is_empty() && first != "self" {
                                let mut p = path.clone();
                                p.push(first);
                                out.push(p);
                            }
                        }
                    }
                    break;
                }
                path.push(rest[..end].to_string());
                rest = &rest[end..];
                match rest.strip_prefix("::") {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            out.push(path);
        }
    }
    // `mod child;` declarations: a module file imports its children.
    for line in code.lines() {
        let l = line.trim();
        let l = l
            .strip_prefix("pub(crate) ")
            .or_else(|| l.strip_prefix("pub(super) "))
            .or_else(|| l.strip_prefix("pub "))
            .unwrap_or(l);
        if let Some(name) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            let mut p = here.clone();
            p.push(name.trim().to_string());
            out.push(p);
        }
    }
    out
}

/// The longest known module that `path` starts with.
fn resolve(path: &[String], known: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains(p))
}

fn layer_of(room: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&room))
}

fn room(module: &[String]) -> String {
    module.first().cloned().unwrap_or_else(|| "lib".to_string())
}

#[test]
fn rooms_import_only_lower_layers_and_files_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let known: BTreeSet<Vec<String>> = mods.iter().map(|m| m.path.clone()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut broken = Vec::new();
    for m in &mods {
        if m.path.first().is_some_and(|r| r == "layers") {
            continue;
        }
        let text = std::fs::read_to_string(&m.file).expect("source file");
        let from_room = room(&m.path);
        let from_layer = layer_of(&from_room)
            .unwrap_or_else(|| panic!("room {from_room} is on no layer: add it to LAYERS"));
        for r in references(&m.path, &code(&text)) {
            let Some(target) = resolve(&r, &known) else {
                continue;
            };
            if target == m.path {
                continue;
            }
            let to_room = room(&target);
            edges
                .entry(m.path.clone())
                .or_default()
                .insert(target.clone());
            if to_room == from_room || m.path.is_empty() {
                continue;
            }
            let to_layer = layer_of(&to_room).unwrap_or(usize::MAX);
            let file = m
                .file
                .strip_prefix(&src)
                .unwrap_or(&m.file)
                .display()
                .to_string();
            let allowed = ALLOWED.iter().any(|(f, t, _)| *f == file && *t == to_room);
            if to_layer >= from_layer && !allowed {
                broken.push(format!(
                    "{file} (room {from_room}, layer {from_layer}) imports {} (room {to_room}, layer {to_layer}): a room imports only lower layers",
                    target.join("::")
                ));
            }
        }
    }
    // Cycles between files.
    let mut state: BTreeMap<Vec<String>, u8> = BTreeMap::new();
    let mut cycles = Vec::new();
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                0 => visit(next, edges, state, stack, cycles),
                1 => {
                    let at = stack.iter().position(|n| n == next).unwrap_or(0);
                    let names: Vec<String> = stack[at..]
                        .iter()
                        .chain(std::iter::once(next))
                        .map(|n| {
                            if n.is_empty() {
                                "lib".into()
                            } else {
                                n.join("::")
                            }
                        })
                        .collect();
                    cycles.push(names.join(" -> "));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
    }
    for node in edges.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    broken.extend(cycles.into_iter().map(|c| format!("import cycle: {c}")));
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_reader_sees_paths_super_and_groups() {
    let code = "use crate::pipeline::catalog::Catalog;\nuse super::{a, b::c};\nmod kid;\nlet x = crate::clock::now_ms();";
    let refs = references(&["api".to_string(), "http".to_string()], code);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(refs.contains(&s(&["pipeline", "catalog", "Catalog"])));
    assert!(refs.contains(&s(&["api", "a"])));
    assert!(refs.contains(&s(&["api", "b"])));
    assert!(refs.contains(&s(&["api", "http", "kid"])));
    assert!(refs.contains(&s(&["clock", "now_ms"])));
}
