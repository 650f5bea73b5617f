//! The module graph of `src/` is layered: a top-level module (config, release, render,
//! build, mail, daemon, cli, …) names only modules below it, so no two import each other,
//! directly or round a loop. Read from the source itself: every `crate::` path, in a `use`
//! line or written inline (`crate::mail::dkim::Signer::load(…)`), and every `super::` path
//! that climbs out of its top-level module. Comments and string literals do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Imports that must not exist, and why.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "config",
        "mail",
        "config holds typed settings and paths; mail reads the key and CA files they name (mail::check)",
    ),
    (
        "render",
        "build",
        "the renderer is below the incremental build that drives it",
    ),
    (
        "daemon",
        "cli",
        "the daemon is started by the command line, not the other way round",
    ),
];

/// Imports that close a cycle today, each to be removed; the cycle check leaves them out.
/// Each must still exist (delete it here once it is gone), and none may touch config.
const KNOWN: &[(&str, &str, &str)] = &[];

/// One import: where it is written, and the path as written.
#[derive(Debug, Clone)]
struct Place {
    file: String,
    line: usize,
    path: String,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} `{}`", self.file, self.line, self.path)
    }
}

/// Top-level module → the modules it names → where it names each (first place first).
type Graph = BTreeMap<String, BTreeMap<String, Vec<Place>>>;

#[test]
fn the_modules_of_src_form_layers_without_an_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph_of(&src);
    assert!(
        graph.contains_key("config") && graph.contains_key("mail") && graph.contains_key("cli"),
        "the graph misses modules: {:?}",
        graph.keys()
    );

    let mut broken = String::new();
    for (from, to, why) in FORBIDDEN {
        if let Some(places) = graph[*from].get(*to) {
            let _ = writeln!(broken, "{from} imports {to} ({why}):");
            for p in places {
                let _ = writeln!(broken, "    {p}");
            }
        }
    }
    for (from, to, _) in KNOWN {
        assert!(
            *from != "config" && *to != "config",
            "a known cycle edge may not touch config: {from} -> {to}"
        );
        if !graph[*from].contains_key(*to) {
            let _ = writeln!(
                broken,
                "{from} no longer imports {to}: delete that edge from KNOWN in tests/it/layers.rs"
            );
        }
    }

    // No cycle but through a known edge, and none through config even so.
    let mut loops = BTreeSet::new();
    for group in cycles(&graph) {
        if group.contains(&"config".to_string()) {
            loops.insert(describe(&graph, &group));
        }
    }
    let mut rest = graph.clone();
    for (from, to, _) in KNOWN {
        if let Some(edges) = rest.get_mut(*from) {
            edges.remove(*to);
        }
    }
    for group in cycles(&rest) {
        loops.insert(describe(&rest, &group));
    }
    for l in loops {
        let _ = writeln!(broken, "{l}");
    }
    assert!(
        broken.is_empty(),
        "the module graph of src/ is not layered:\n{broken}"
    );
}

#[test]
fn the_reader_sees_inline_paths_groups_and_super_but_not_comments_or_strings() {
    let code = r##"
//! `crate::mail` in a doc comment
use crate::{config::Config, release::{self, Slug}};
use super::media::Recipient;
/* crate::http, /* nested crate::ledger */ still a comment */
fn f() {
    let _ = "crate::daemon";
    let _ = r#"crate::cli "quoted""#;
    let _ = '"';
    let _ = crate::render::Map::default();
    let _: &'static str = "";
    let _ = notcrate::x;
}
mod tests {
    use super::*;
    use super::super::build;
}
"##;
    let found = imports(code, &["planner".to_string()]);
    let names: Vec<&str> = found.iter().map(|(to, _, _)| to.as_str()).collect();
    assert_eq!(names, ["config", "release", "media", "render", "build"]);
    assert_eq!(found[3].1, 10, "the line of the inline path");
    assert_eq!(found[3].2, "crate::render::Map::default");
}

/// The graph between the top-level modules that `src/lib.rs` declares.
fn graph_of(src: &Path) -> Graph {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let modules: BTreeSet<String> = blank(&lib)
        .split(';')
        .filter_map(|item| {
            let words: Vec<&str> = item.split_whitespace().collect();
            match words.as_slice() {
                [.., "mod", name] => Some(name.to_string()),
                _ => None,
            }
        })
        .collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let mut path: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if path.last().is_some_and(|l| l == "mod") {
            path.pop();
        }
        // The crate root declares the modules; main.rs is the binary, another crate.
        if path == ["lib"] || path == ["main"] {
            continue;
        }
        let top = path[0].clone();
        let name = format!("src/{}", rel.to_string_lossy());
        assert!(
            modules.contains(&top),
            "{name}: not under a module lib.rs declares"
        );
        let text = std::fs::read_to_string(&file).expect("read");
        for (to, line, written) in imports(&text, &path) {
            if to == top || to == "self" || to == "*" {
                continue;
            }
            assert!(
                modules.contains(&to),
                "{name}:{line}: `{written}` names `{to}`, not a top-level module of src/"
            );
            graph
                .get_mut(&top)
                .expect("declared")
                .entry(to)
                .or_default()
                .push(Place {
                    file: name.clone(),
                    line,
                    path: written,
                });
        }
    }
    graph
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text with comments and the insides of string and character literals made spaces
/// (line breaks kept, so line numbers still hold).
fn blank(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let keep = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(keep(c[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '"'), or else a lifetime ('a).
            let end = if next == Some('\\') {
                (i + 3..c.len()).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.push_str(&" ".repeat(end - i + 1));
                    i = end + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else if ident(c[i]) {
            let start = i;
            while i < c.len() && ident(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let hashes = c[i..].iter().take_while(|&&ch| ch == '#').count();
            let raw = matches!(word.as_str(), "r" | "br" | "cr");
            if raw && c.get(i + hashes) == Some(&'"') {
                // A raw string: up to `"` and as many `#` as it opened with.
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let body_start = i + hashes + 1;
                let body: String = c[body_start..].iter().collect();
                let len = body
                    .find(&close)
                    .map_or(body.len(), |n| body[..n].chars().count());
                out.push_str(&" ".repeat(body_start - start));
                out.extend(c[body_start..body_start + len].iter().map(|&ch| keep(ch)));
                out.push_str(&" ".repeat((c.len() - body_start - len).min(close.len())));
                i = (body_start + len + close.len()).min(c.len());
            } else {
                out.push_str(&word);
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The modules a file names outside itself: (name, line, path as written). `path` is the
/// file's module path (`["mail", "dkim"]`); inline `mod x { … }` blocks go deeper, so a
/// test module's `use super::*` stays where it is. A `crate::` path names its first
/// segment; a `super::` path that climbs to the crate root names the segment after it.
fn imports(text: &str, path: &[String]) -> Vec<(String, usize, String)> {
    let code: Vec<char> = blank(text).chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let word_at = |i: usize| -> String {
        code[i..]
            .iter()
            .take_while(|&&ch| ident(ch))
            .collect::<String>()
    };
    let skip_space = |mut i: usize| {
        while i < code.len() && code[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let line_of = |i: usize| code[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
    // The whole path written from `start`: segments, `::`, and groups in braces.
    let written = |start: usize| -> String {
        let mut end = start;
        let mut depth = 0;
        while end < code.len() {
            let ch = code[end];
            if ch == '{' {
                depth += 1;
            } else if ch == '}' {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            } else if depth == 0 && !(ident(ch) || ch == ':' || ch == '*') {
                break;
            }
            end += 1;
        }
        code[start..end]
            .iter()
            .filter(|ch| !ch.is_whitespace())
            .collect()
    };
    // The first segments of the names a path brings in after its root: `x` of `root::x::…`,
    // or each item's first segment of `root::{x::…, y}`.
    let heads = |after: usize| -> Vec<String> {
        let i = skip_space(after);
        if code.get(i) != Some(&'{') {
            return vec![word_at(i)]
                .into_iter()
                .filter(|w| !w.is_empty())
                .collect();
        }
        let mut names = Vec::new();
        let (mut depth, mut j, mut expect) = (0, i, true);
        while j < code.len() {
            match code[j] {
                '{' => {
                    depth += 1;
                    expect = depth == 1;
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ',' if depth == 1 => expect = true,
                ch if expect && depth == 1 && (ident(ch) || ch == '*') => {
                    names.push(if ch == '*' {
                        "*".to_string()
                    } else {
                        word_at(j)
                    });
                    expect = false;
                }
                _ => {}
            }
            j += 1;
        }
        names
    };

    let mut found = Vec::new();
    // Inline modules open: (brace depth outside, name).
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < code.len() {
        let ch = code[i];
        if ch == '{' {
            depth += 1;
            i += 1;
            continue;
        }
        if ch == '}' {
            depth -= 1;
            if inline.last().is_some_and(|(d, _)| *d == depth) {
                inline.pop();
            }
            i += 1;
            continue;
        }
        if !ident(ch) || (i > 0 && (ident(code[i - 1]) || code[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let word = word_at(i);
        let after = i + word.chars().count();
        if word == "mod" {
            let name_at = skip_space(after);
            let name = word_at(name_at);
            let brace = skip_space(name_at + name.chars().count());
            if !name.is_empty() && code.get(brace) == Some(&'{') {
                inline.push((depth, name));
            }
        } else if word == "crate" || word == "super" {
            // `super::super::…` climbs once per `super`.
            let mut climbs = 0;
            let mut j = i;
            let mut root = false;
            loop {
                let w = word_at(j);
                let k = skip_space(j + w.chars().count());
                let colons = code.get(k) == Some(&':') && code.get(k + 1) == Some(&':');
                if !colons {
                    break;
                }
                let next = skip_space(k + 2);
                if w == "crate" {
                    root = true;
                    j = next;
                    break;
                }
                if w != "super" {
                    break;
                }
                climbs += 1;
                j = next;
                if word_at(j) != "super" {
                    root = climbs == path.len() + inline.len();
                    break;
                }
            }
            if root {
                for name in heads(j) {
                    found.push((name, line_of(i), written(i)));
                }
            }
            i = j.max(i + 1);
            continue;
        }
        i = after;
    }
    found
}

/// Each group of modules that import one another round a loop (Tarjan's strongly
/// connected components of more than one module).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(w: &mut Walk<'g>, v: &'g str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        let graph = w.graph;
        for to in graph[v].keys() {
            let to = to.as_str();
            if !w.index.contains_key(to) {
                visit(w, to);
                let low = w.low[v].min(w.low[to]);
                w.low.insert(v, low);
            } else if w.stack.contains(&to) {
                let low = w.low[v].min(w.index[to]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let at = w.stack.iter().position(|&m| m == v).expect("on the stack");
            let group: Vec<String> = w.stack.drain(at..).map(str::to_string).collect();
            if group.len() > 1 {
                w.found.push(group);
            }
        }
    }
    let mut w = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.found
}

/// One loop through a group, `a -> b -> a`, with where each import is written.
fn describe(graph: &Graph, group: &[String]) -> String {
    let members: BTreeSet<&str> = group.iter().map(String::as_str).collect();
    let start = *members.first().expect("a module");
    // Shortest way back to `start` inside the group (breadth first).
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut back = None;
    while let Some(v) = queue.pop_front() {
        for to in graph[v].keys().map(String::as_str) {
            if to == start {
                back = Some(v);
                break;
            }
            if members.contains(to) && !came_from.contains_key(to) && to != start {
                came_from.insert(to, v);
                queue.push_back(to);
            }
        }
        if back.is_some() {
            break;
        }
    }
    let mut loop_ = vec![start];
    let mut v = back.expect("a group is a loop");
    while v != start {
        loop_.insert(1, v);
        v = came_from[v];
    }
    loop_.push(start);
    let mut text = format!(
        "import cycle: {} (the whole group: {})",
        loop_.join(" -> "),
        members.into_iter().collect::<Vec<_>>().join(", ")
    );
    for pair in loop_.windows(2) {
        let places = &graph[pair[0]][pair[1]];
        let _ = write!(text, "\n    {} -> {}: {}", pair[0], pair[1], places[0]);
        if places.len() > 1 {
            let _ = write!(text, " (and {} more)", places.len() - 1);
        }
    }
    text
}
