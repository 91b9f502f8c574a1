//! The source tree's folders depend on each other in one direction only: the top-level modules of
//! `src/`, linked by every `crate::name` path their code uses (unit tests aside), form no circle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top-level module of `src/` -> the top-level modules its code names through `crate::`.
fn folder_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap();
            let first = relative.components().next().unwrap();
            let module = first.as_os_str().to_str().unwrap().trim_end_matches(".rs");
            if module == "lib" || path.file_name().unwrap() == "tests.rs" {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            // Unit tests may build their inputs from anywhere; only the code itself counts.
            let code = text.split("#[cfg(test)]").next().unwrap();
            let uses: &mut BTreeSet<String> = graph.entry(module.to_owned()).or_default();
            for line in code
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
            {
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        uses.insert(name);
                    }
                }
            }
        }
    }
    // A name the crate root re-exports stands for the folder it comes from; other names that are not
    // modules (items defined in lib.rs itself) are no edge.
    let aliases = root_reexports(&fs::read_to_string(root.join("lib.rs")).unwrap());
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (module, uses) in graph.iter_mut() {
        let named: BTreeSet<String> = std::mem::take(uses);
        for name in named {
            let folders = aliases.get(&name).cloned().unwrap_or_else(|| [name].into());
            uses.extend(
                folders
                    .into_iter()
                    .filter(|folder| modules.contains(folder) && folder != module),
            );
        }
    }
    graph
}

/// What each name lib.rs re-exports (`pub use folder::{a, b};`, or a `pub mod name { pub use ... }`
/// facade) stands for: the folders it comes from.
fn root_reexports(lib: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut aliases: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut facade: Option<String> = None;
    let code: String = lib
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in code.split(';') {
        let mut statement = statement.trim();
        if let Some(rest) = statement.strip_prefix('}') {
            facade = None;
            statement = rest.trim();
        }
        if let Some(start) = statement.find("pub mod ")
            && let Some((name, inner)) = statement[start + "pub mod ".len()..].split_once('{')
        {
            facade = Some(name.trim().to_owned());
            statement = inner.trim();
        }
        let Some(path) = statement.strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_start_matches("crate::");
        let folder: String = path
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let names: Vec<String> = match &facade {
            Some(name) => vec![name.clone()],
            None => path
                .split(['{', '}', ',', ':', ';', ' ', '\n'])
                .filter(|part| !part.is_empty())
                .skip(1)
                .map(str::to_owned)
                .collect(),
        };
        for name in names {
            aliases.entry(name).or_default().insert(folder.clone());
        }
    }
    aliases
}

/// A circle through `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_source_folders_import_each_other_without_a_circle() {
    let graph = folder_graph();
    assert!(
        graph.len() >= 8,
        "expected the crate's folders, found {graph:?}"
    );
    assert_eq!(
        find_cycle(&graph),
        None,
        "imports between src/ folders: {graph:?}"
    );
}

#[test]
fn the_parsers_of_server_delays_know_nothing_of_the_policy() {
    let graph = folder_graph();
    assert_eq!(
        graph["wait"],
        BTreeSet::new(),
        "wait/ imports: {:?}",
        graph["wait"]
    );
    assert!(!graph["plan"].contains("policy"));
}

#[test]
fn the_cycle_finder_finds_a_circle() {
    let mut graph = BTreeMap::<String, BTreeSet<String>>::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn names_the_root_reexports_stand_for_their_folders() {
    let lib = "pub use shared::{budget, pushback};\npub use wait::backoff;\n\
               pub mod history {\n    pub use crate::report::history::{A, B};\n    pub use crate::wait::{C};\n}\n";
    let aliases = root_reexports(lib);
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(aliases["budget"], set(&["shared"]));
    assert_eq!(aliases["pushback"], set(&["shared"]));
    assert_eq!(aliases["backoff"], set(&["wait"]));
    assert_eq!(aliases["history"], set(&["report", "wait"]));
}
