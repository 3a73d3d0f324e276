//! The `Dockerfile` and `.dockerignore` as the tests read them, without a Docker engine: the
//! instructions by stage, and the build stage's copy set laid out in a scratch directory exactly as
//! its `COPY` lines would lay it out in the image (what `.dockerignore` excludes left out).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A path of the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// One Dockerfile instruction: its keyword (upper case) and its arguments, continuations joined.
#[derive(Debug)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

fn instructions() -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (keyword, args) = pending
                    .split_once(char::is_whitespace)
                    .unwrap_or((&pending, ""));
                instructions.push(Instruction {
                    keyword: keyword.to_uppercase(),
                    args: args.trim().to_owned(),
                });
                pending.clear();
            }
        }
    }
    assert!(
        pending.is_empty(),
        "Dockerfile ends inside a continued line"
    );
    instructions
}

/// The Dockerfile's stages: (`FROM` arguments, instructions).
pub fn stages() -> Vec<(String, Vec<Instruction>)> {
    let mut stages: Vec<(String, Vec<Instruction>)> = Vec::new();
    for instruction in instructions() {
        if instruction.keyword == "FROM" {
            stages.push((instruction.args, Vec::new()));
        } else {
            stages
                .last_mut()
                .unwrap_or_else(|| panic!("{instruction:?} before any FROM"))
                .1
                .push(instruction);
        }
    }
    stages
}

/// The JSON array of an exec-form instruction (`["a", "b"]`).
pub fn exec_form(args: &str) -> Vec<String> {
    let start = args
        .find('[')
        .unwrap_or_else(|| panic!("`{args}` is not in exec form [\"…\"]"));
    serde_json::from_str(&args[start..])
        .unwrap_or_else(|e| panic!("`{args}` is not a JSON array: {e}"))
}

/// `ENV` settings of an instruction list (`NAME=value …` form).
pub fn env_settings(instructions: &[Instruction]) -> std::collections::BTreeMap<String, String> {
    instructions
        .iter()
        .filter(|i| i.keyword == "ENV")
        .flat_map(|i| i.args.split_whitespace())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV `{pair}`: use the NAME=value form"));
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

/// The sources and destination of a `COPY` from the build context (`None` for `COPY --from=…`).
pub fn copy_from_context(copy: &Instruction) -> Option<(Vec<String>, String)> {
    if copy.keyword != "COPY" || copy.args.starts_with("--from") {
        return None;
    }
    let mut words: Vec<String> = copy
        .args
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .map(String::from)
        .collect();
    let dest = words.pop().expect("COPY SRC… DEST");
    assert!(!words.is_empty(), "COPY {}: no source", copy.args);
    Some((words, dest))
}

/// The patterns of `.dockerignore`, in order (`!` marks an exception).
pub fn dockerignore() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_matches('/').to_owned())
        .collect()
}

/// Whether one path segment matches a pattern segment (`*` and `?`, as Docker's matcher).
fn segment_matches(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            segment_matches(rest, name)
                || (!name.is_empty() && segment_matches(pattern, &name[1..]))
        }
        (Some((b'?', rest)), Some((_, tail))) => segment_matches(rest, tail),
        (Some((p, rest)), Some((n, tail))) => p == n && segment_matches(rest, tail),
        _ => false,
    }
}

/// Whether a path matches a pattern, segment by segment; `**` stands for any number of segments.
fn glob(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| glob(rest, &path[skip..])),
        Some((first, rest)) => path.split_first().is_some_and(|(name, tail)| {
            segment_matches(first.as_bytes(), name.as_bytes()) && glob(rest, tail)
        }),
    }
}

/// Whether `.dockerignore`'s `patterns` keep a context path out of the build context: the last
/// pattern matching it or one of its parent directories decides.
pub fn ignored(path: &str, patterns: &[String]) -> bool {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let mut excluded = false;
    for pattern in patterns {
        let (exception, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern.as_str()),
        };
        assert!(
            !pattern.contains('['),
            "{pattern}: character classes are not handled here"
        );
        let pattern: Vec<&str> = pattern.split('/').collect();
        if (1..=segments.len()).any(|n| glob(&pattern, &segments[..n])) {
            excluded = !exception;
        }
    }
    excluded
}

/// Paths, relative to the repository, that `src/` includes at compile time (`include_str!`,
/// `include_bytes!` with a literal relative path).
pub fn compile_time_includes() -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("read source");
                for macro_name in ["include_str!(\"", "include_bytes!(\""] {
                    for (at, _) in source.match_indices(macro_name) {
                        let rest = &source[at + macro_name.len()..];
                        let literal = &rest[..rest.find('"').expect("closing quote")];
                        let target = path.parent().expect("parent").join(literal);
                        let Ok(target) = target.canonicalize() else {
                            panic!(
                                "{} includes {literal}, which does not exist",
                                path.display()
                            );
                        };
                        let root = Path::new(ROOT).canonicalize().expect("root");
                        if let Ok(relative) = target.strip_prefix(&root) {
                            found.insert(relative.to_owned());
                        }
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&repo("src"), &mut found);
    found
}

/// Lays out under `scratch` what the stage that runs `cargo build` has copied from the build
/// context by then, as its `COPY` lines would in the image (destinations resolved against its
/// `WORKDIR`, what `.dockerignore` excludes left out); the directory `cargo build` runs in.
pub fn lay_out_build_stage(scratch: &Path) -> PathBuf {
    let stages = stages();
    let builds = |i: &Instruction| i.keyword == "RUN" && i.args.contains("cargo build");
    let (_, build) = stages
        .iter()
        .find(|(_, stage)| stage.iter().any(builds))
        .expect("a stage runs cargo build");
    let patterns = dockerignore();
    let mut workdir = PathBuf::from("/");
    for instruction in build {
        if instruction.keyword == "WORKDIR" {
            workdir = resolve(&workdir, &instruction.args);
        } else if builds(instruction) {
            return inside(scratch, &workdir);
        } else if let Some((sources, dest)) = copy_from_context(instruction) {
            let target = inside(scratch, &resolve(&workdir, &dest));
            let into_dir = sources.len() > 1 || dest.ends_with('/') || target.is_dir();
            for source in sources {
                copy_source(&source, &target, into_dir, &patterns);
            }
        }
    }
    unreachable!("the stage runs cargo build")
}

/// `path` (absolute, or relative to `workdir`) with `.` and `..` resolved.
fn resolve(workdir: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::from("/");
    for part in workdir.join(path).components() {
        match part {
            std::path::Component::ParentDir => {
                resolved.pop();
            }
            std::path::Component::Normal(name) => resolved.push(name),
            _ => {}
        }
    }
    resolved
}

/// An absolute image path, under `scratch`.
fn inside(scratch: &Path, absolute: &Path) -> PathBuf {
    scratch.join(absolute.strip_prefix("/").unwrap_or(absolute))
}

fn copy_source(source: &str, target: &Path, into_dir: bool, patterns: &[String]) {
    assert!(
        !source.contains(['*', '?', '[']),
        "COPY {source}: wildcards are not handled here"
    );
    let relative = source.trim_start_matches("./").trim_end_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    let from = repo(relative);
    if from.is_dir() {
        // A directory's contents are copied, not the directory itself.
        copy_tree(relative, target, patterns);
    } else if !ignored(relative, patterns) {
        let name = from.file_name().expect("a file name");
        let to = if into_dir {
            target.join(name)
        } else {
            target.to_owned()
        };
        copy_file(&from, &to);
    }
}

fn copy_tree(relative: &str, target: &Path, patterns: &[String]) {
    for entry in std::fs::read_dir(repo(relative)).expect("read a copied directory") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = match relative {
            "." => name.clone(),
            _ => format!("{relative}/{name}"),
        };
        if ignored(&child, patterns) {
            continue;
        }
        if entry.path().is_dir() {
            copy_tree(&child, &target.join(&name), patterns);
        } else {
            copy_file(&entry.path(), &target.join(&name));
        }
    }
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("a parent")).expect("create a directory");
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}
