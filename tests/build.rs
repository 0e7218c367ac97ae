//! Generates `conformance_suite!` from the checks in `support/conformance/`, so that no list
//! of checks is kept by hand.
//!
//! Every file there but `mod.rs` and `helpers.rs` is a topic, and every `pub async fn` in a
//! topic is a check: `pub async fn NAME<S: EventStore>(store: S)` (or `S: ProjectionStore`), maybe with a
//! return type.
//! A `pub async fn` of another shape, a topic without checks or a topic `mod.rs` does not
//! declare fails the build, so a check can never be silently left out. The macro goes to
//! `$OUT_DIR/conformance_suite.rs`, which `support/lib.rs` includes.

use std::path::Path;
use std::{env, fs};

/// The folder of the checks, relative to this package.
const DIR: &str = "support/conformance";

/// One file of [`DIR`] and its checks, in file order.
struct Topic {
    name: String,
    checks: Vec<Check>,
}

/// One check: a `pub async fn NAME<S: EventStore>(store: S)` of a topic.
struct Check {
    name: String,
    /// Whether it returns something (which the test ignores).
    returns: bool,
}

fn main() {
    let root = env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    println!("cargo:rerun-if-changed={DIR}");
    match topics(&Path::new(&root).join(DIR)) {
        Ok(topics) => {
            let out = env::var("OUT_DIR").expect("OUT_DIR is set by cargo");
            let path = Path::new(&out).join("conformance_suite.rs");
            fs::write(&path, suite(&topics))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        Err(errors) => {
            for error in errors {
                eprintln!("error: {error}");
            }
            std::process::exit(1);
        }
    }
}

/// The topics of `dir` in file name order, or every reason they do not make a suite.
fn topics(dir: &Path) -> Result<Vec<Topic>, Vec<String>> {
    let declared = declared_modules(&read(&dir.join("mod.rs")));
    let mut files: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            let name = entry.expect("directory entry").file_name();
            name.into_string().expect("file names are UTF-8")
        })
        .filter(|name| name.ends_with(".rs"))
        .collect();
    files.sort();

    let (mut topics, mut errors) = (Vec::new(), Vec::new());
    for file in &files {
        println!("cargo:rerun-if-changed={DIR}/{file}");
        let name = file.strip_suffix(".rs").unwrap_or(file);
        if name == "mod" || name == "helpers" {
            continue;
        }
        if !declared.iter().any(|module| module == name) {
            errors.push(format!(
                "{DIR}/{file}: not declared in mod.rs: add `pub mod {name};`"
            ));
        }
        let checks = checks(file, &read(&dir.join(file)), &mut errors);
        if checks.is_empty() {
            errors.push(format!("{DIR}/{file}: a topic without checks"));
        }
        topics.push(Topic {
            name: name.to_owned(),
            checks,
        });
    }
    if errors.is_empty() {
        Ok(topics)
    } else {
        Err(errors)
    }
}

/// The file at `path`, which must be readable.
fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `line` without its `//` comment, doc comments included. (A `//` in a string literal
/// cuts the line too; no signature has one.)
fn code(line: &str) -> &str {
    line.split_once("//").map_or(line, |(head, _)| head)
}

/// The names `mod.rs` declares as `pub mod NAME;`.
fn declared_modules(source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|line| {
            code(line)
                .trim()
                .strip_prefix("pub mod ")?
                .strip_suffix(';')
        })
        .map(|name| name.trim().to_owned())
        .collect()
}

/// The checks of the topic `file`, whose text is `source`, in file order. Every other
/// `pub async fn` is reported in `errors`, with its line.
fn checks(file: &str, source: &str, errors: &mut Vec<String>) -> Vec<Check> {
    let lines: Vec<&str> = source.lines().map(code).collect();
    let mut checks = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if !line.split_whitespace().take(3).eq(["pub", "async", "fn"]) {
            continue;
        }
        // The signature runs to the body's brace, over as many lines as it takes (joined
        // as they are: `check` ignores whitespace).
        let mut signature = String::new();
        for part in &lines[index..] {
            match part.split_once('{') {
                Some((head, _)) => {
                    signature.push_str(head);
                    break;
                }
                None => signature.push_str(part),
            }
        }
        match check(&signature) {
            Some(check) => checks.push(check),
            None => errors.push(format!(
                "{DIR}/{file}:{}: `{}` is not a check, which is exactly \
                 `pub async fn NAME<S: EventStore>(store: S)`; helpers belong in helpers.rs",
                index + 1,
                line.trim(),
            )),
        }
    }
    checks
}

/// The check `signature` (a function's text up to its body) declares, if it has the shape
/// `pub async fn NAME<S: EventStore>(store: S)`: whitespace is free, a trailing comma after
/// `store: S` and a return type are allowed, nothing else.
fn check(signature: &str) -> Option<Check> {
    let compact: String = signature.split_whitespace().collect();
    let rest = compact.strip_prefix("pubasyncfn")?;
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(rest.len());
    let (name, rest) = rest.split_at(end);
    let rest = rest
        .strip_prefix("<S:EventStore>(store:S")
        .or_else(|| rest.strip_prefix("<S:ProjectionStore>(store:S"))?;
    let rest = rest.strip_prefix(',').unwrap_or(rest).strip_prefix(')')?;
    let returns = !rest.is_empty();
    if name.is_empty() || (returns && !rest.starts_with("->")) {
        return None;
    }
    Some(Check {
        name: name.to_owned(),
        returns,
    })
}

/// The beginning of the generated file, up to the backend's module.
const HEAD: &str = r#"// Generated by tests/build.rs from the checks in tests/support/conformance/. Do not edit.

/// Instantiates every conformance check as a `#[tokio::test]` for one backend.
///
/// `conformance_suite!(backend, fixture)` makes a module `backend` holding a module per
/// topic of `support/conformance/` and, in it, a test per check: `backend::topic::check`.
/// `$fixture` is an async fn returning a fresh [`Fixture`](crate::Fixture) for each test.
///
/// Generated by `build.rs` from the checks in `support/conformance/`: a check written there
/// runs on every backend, with no list to keep.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, $fixture:path) => {
        mod $backend {
"#;

/// The end of the generated file, after the last topic.
const TAIL: &str = "        }
    };
}
";

/// The text of `conformance_suite.rs`: the macro, with a test per check of `topics`.
fn suite(topics: &[Topic]) -> String {
    let mut out = String::from(HEAD);
    for topic in topics {
        out.push_str(&format!("            mod {} {{\n", topic.name));
        for check in &topic.checks {
            let call = format!(
                "$crate::conformance::{}::{}(fixture.store.clone()).await",
                topic.name, check.name
            );
            let run = if check.returns {
                format!("let _ = {call};")
            } else {
                format!("{call};")
            };
            out.push_str(&format!(
                "                #[tokio::test(flavor = \"multi_thread\", worker_threads = 4)]
                async fn {}() {{
                    let fixture = $fixture().await;
                    {run}
                }}
",
                check.name
            ));
        }
        out.push_str("            }\n");
    }
    out.push_str(TAIL);
    out
}
