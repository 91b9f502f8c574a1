//! The source tree's modules depend on each other in one direction only. In every folder of `src/`,
//! the modules directly in it (its files and its sub-folders), linked by the paths their code names
//! (unit tests aside), form no circle: the top-level folders, and the files of each folder.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module -> the sibling modules its code names.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules of `src/` and the ones each names through `crate::`.
fn folder_graph() -> Graph {
    sibling_graph(&src())
}

/// The modules directly in `dir` -> the siblings their code names, as `crate::<dir's path>::name`
/// or, from a file directly in `dir`, `super::name`. The folder's own `mod.rs` (`lib.rs` at the root)
/// is no node: a name it re-exports stands for the sibling that defines it, and a name it defines
/// itself is no edge.
fn sibling_graph(dir: &Path) -> Graph {
    let relative = dir.strip_prefix(src()).unwrap();
    let prefix: String = relative
        .components()
        .map(|part| format!("{}::", part.as_os_str().to_str().unwrap()))
        .collect();
    let prefix = format!("crate::{prefix}");
    let door = if relative.as_os_str().is_empty() {
        "lib.rs"
    } else {
        "mod.rs"
    };
    let mut graph = Graph::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        let node = match (path.is_dir(), name.strip_suffix(".rs")) {
            (true, _) => name,
            (false, Some(stem)) if name != door && name != "tests.rs" => stem,
            _ => continue,
        };
        let uses = graph.entry(node.to_owned()).or_default();
        for file in rust_files(&path) {
            let code = code_of(&file);
            uses.extend(names_after(&code, &prefix));
            if file.parent() == Some(dir) {
                uses.extend(names_after(&code, "super::"));
            }
        }
    }
    let aliases = reexports(&fs::read_to_string(dir.join(door)).unwrap());
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

/// `path` if it is a Rust file, or every Rust file under it (unit tests' `tests.rs` aside).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return match path.extension() {
            Some(ext) if ext == "rs" => vec![path.to_owned()],
            _ => Vec::new(),
        };
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "tests.rs" {
            files.extend(rust_files(&path));
        }
    }
    files
}

/// A file's code: what comes before its unit tests, without comment lines.
fn code_of(file: &Path) -> String {
    let text = fs::read_to_string(file).unwrap();
    // Unit tests may build their inputs from anywhere; only the code itself counts.
    let code = text.split("#[cfg(test)]").next().unwrap();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first name of every path that follows `prefix`: `crate::a::b` gives `a`, and
/// `crate::{a::b, c}` gives `a` and `c`.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        let Some(group) = rest.strip_prefix('{') else {
            names.insert(ident(rest));
            continue;
        };
        // The items of a group, at its own depth only.
        let (mut depth, mut start) = (0, 0);
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    names.insert(ident(&group[start..j]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.insert(ident(&group[start..j]));
                    start = j + 1;
                }
                _ => {}
            }
        }
    }
    names.remove("");
    names
}

/// Every folder of `src/`, the root included.
fn folders() -> Vec<PathBuf> {
    let mut found = vec![src()];
    let mut i = 0;
    while i < found.len() {
        for entry in fs::read_dir(&found[i]).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.push(path);
            }
        }
        i += 1;
    }
    found
}

/// What each name a folder's `mod.rs` (or `lib.rs`) brings in with `use` (`pub use module::{a, b};`,
/// or a `pub mod name { pub use ... }` facade) stands for: the modules it comes from.
fn reexports(door: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut aliases: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut facade: Option<String> = None;
    let code: String = door
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.starts_with("//"))
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
        // The statement's last line that starts a `use`, to its end.
        let statement = format!("\n{statement}");
        let Some(path) = ["\npub use ", "\npub(crate) use ", "\nuse "]
            .iter()
            .filter_map(|marker| Some(&statement[statement.rfind(marker)? + marker.len()..]))
            .min_by_key(|path| path.len())
        else {
            continue;
        };
        let path = path
            .trim_start_matches("crate::")
            .trim_start_matches("self::");
        let module: String = path
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
            aliases.entry(name).or_default().insert(module.clone());
        }
    }
    aliases
}

/// A circle through `graph`, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
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
fn the_files_of_each_folder_import_each_other_without_a_circle() {
    let circles: Vec<String> = folders()
        .iter()
        .filter_map(|dir| {
            let cycle = find_cycle(&sibling_graph(dir))?;
            let dir = dir.strip_prefix(src()).unwrap().display();
            Some(format!("src/{dir}: {}", cycle.join(" -> ")))
        })
        .collect();
    assert!(
        circles.is_empty(),
        "imports in a circle:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_store_and_the_throttle_do_not_import_each_other_both_ways() {
    let shared = sibling_graph(&src().join("shared"));
    let store_uses_throttle = shared["store"].contains("throttle");
    let throttle_uses_store = shared["throttle"].contains("store");
    assert!(
        !(store_uses_throttle && throttle_uses_store),
        "src/shared/store and src/shared/throttle import each other"
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
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn a_path_names_its_first_module_and_a_group_each_of_its_own() {
    let code = "use crate::policy::retry_policy::RetryPolicy;\n\
                use crate::policy::{\n    observe::{Observe, X},\n    classes::Classes,\n};\n\
                let _ = crate::report::warn::GiveUpLog::default();";
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        names_after(code, "crate::policy::"),
        set(&["classes", "observe", "retry_policy"])
    );
    assert_eq!(names_after(code, "crate::"), set(&["policy", "report"]));
}

#[test]
fn names_a_folder_brings_in_stand_for_their_modules() {
    let lib = "pub use shared::{budget, pushback};\npub use wait::backoff;\n\
               pub mod history {\n    pub use crate::report::history::{A, B};\n    pub use crate::wait::{C};\n}\n\
               mod read;\n#[cfg(test)]\nmod tests;\n\npub(crate) use read::{server_delay};\n\
               fn f() {\n    let _ = 1;\n}\nuse lane::Turn;\n";
    let aliases = reexports(lib);
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(aliases["budget"], set(&["shared"]));
    assert_eq!(aliases["pushback"], set(&["shared"]));
    assert_eq!(aliases["backoff"], set(&["wait"]));
    assert_eq!(aliases["history"], set(&["report", "wait"]));
    assert_eq!(aliases["server_delay"], set(&["read"]));
    assert_eq!(aliases["Turn"], set(&["lane"]));
}
