//! `plugin new` (scaffold a plugin project) and `plugin test` (one local call
//! through the same host the router uses). Neither needs a running router.
//!
//! `new` writes a project from the templates in `crates/cli/templates/`
//! (embedded with `include_str!`, placeholders `{{name}}`, `{{package}}`,
//! `{{artifact}}`, `{{world}}`, `{{component}}`, `{{try}}`) plus a copy of the
//! repository's `wit/`, and refuses a bad name or a non-empty target directory.
//! `test` loads a component with [`PluginHost`] (default limits) and makes one
//! call: an operator prepares `--arg` and tests `--input`, an adapter decodes
//! `--input` as the body of an HTTP request to `/ingest/<name>`. It prints the
//! answer as JSON and exits 0 when the call ran (whatever the answer), 1 when
//! the call failed (trap, timeout, out of memory), 2 when the component or the
//! input could not be used. `SIGNALBOX_PLUGIN_CACHE_DIR` names a directory for
//! the compiled-artefact cache, so a large component compiles once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use signalbox_model::Value;
use signalbox_plugin::{
    CallError, DecodeError, Envelope, HostConfig, LoadError, LoadedPlugin, PluginHost, PluginKind,
    Transport,
};

use crate::cli::{PluginLang, PluginWorld};

/// The WIT package every scaffold carries in `wit/`, from the repository's `wit/`.
const WIT: &[(&str, &str)] = &[
    (
        "wit/adapter.wit",
        include_str!("../../../../wit/adapter.wit"),
    ),
    (
        "wit/conditions.wit",
        include_str!("../../../../wit/conditions.wit"),
    ),
    ("wit/host.wit", include_str!("../../../../wit/host.wit")),
    ("wit/types.wit", include_str!("../../../../wit/types.wit")),
    ("wit/worlds.wit", include_str!("../../../../wit/worlds.wit")),
];

/// Where `plugin test` keeps compiled artefacts between runs, when set (a
/// Python or JavaScript component takes seconds to compile). Like the router's
/// cache directory, it must be writable only by the user running the command.
const CACHE_DIR_ENV: &str = "SIGNALBOX_PLUGIN_CACHE_DIR";

/// The "Try it" / "Use it" part of every README, by world.
const TRY_OPERATOR: &str = include_str!("../../templates/try-operator.md");
const TRY_ADAPTER: &str = include_str!("../../templates/try-source-adapter.md");

mod rust {
    //! The Rust templates.
    pub const CARGO_TOML: &str = include_str!("../../templates/rust/Cargo.toml.tmpl");
    pub const OPERATOR: &str = include_str!("../../templates/rust/operator.rs");
    pub const ADAPTER: &str = include_str!("../../templates/rust/source-adapter.rs");
    pub const README: &str = include_str!("../../templates/rust/README.md");
    pub const GITIGNORE: &str = include_str!("../../templates/rust/gitignore");
}

mod python {
    //! The Python (componentize-py) templates.
    pub const OPERATOR_APP: &str = include_str!("../../templates/python/operator-app.py");
    pub const OPERATOR_CONDITIONS: &str =
        include_str!("../../templates/python/operator-conditions.py");
    pub const ADAPTER_APP: &str = include_str!("../../templates/python/source-adapter-app.py");
    pub const README: &str = include_str!("../../templates/python/README.md");
    pub const GITIGNORE: &str = include_str!("../../templates/python/gitignore");
}

mod js {
    //! The JavaScript (jco / ComponentizeJS) templates.
    pub const PACKAGE_JSON: &str = include_str!("../../templates/js/package.json.tmpl");
    pub const OPERATOR: &str = include_str!("../../templates/js/operator.js");
    pub const ADAPTER: &str = include_str!("../../templates/js/source-adapter.js");
    pub const README: &str = include_str!("../../templates/js/README.md");
    pub const GITIGNORE: &str = include_str!("../../templates/js/gitignore");
}

impl PluginWorld {
    /// The world's name in `wit/worlds.wit`.
    fn wit(self) -> &'static str {
        match self {
            PluginWorld::Operator => "operator",
            PluginWorld::SourceAdapter => "source-adapter",
        }
    }
}

impl PluginLang {
    fn as_str(self) -> &'static str {
        match self {
            PluginLang::Rust => "rust",
            PluginLang::Python => "python",
            PluginLang::Js => "js",
        }
    }
}

/// The plugin host's name rule: 1–64 characters of `[A-Za-z0-9_.-]`; here also
/// not `.` or `..`, since the name is a directory.
fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok_chars {
        return Err(format!(
            "plugin name {name:?} is not valid: use 1-64 characters of A-Z a-z 0-9 _ . -"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!(
            "plugin name {name:?} is not valid: it is also the project's directory name"
        ));
    }
    Ok(())
}

/// Names Cargo or rustc will not take for a library crate.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "proc-macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// A Cargo / npm package name for a valid plugin name: lower case, dots as
/// dashes, starting with a letter (else prefixed `plugin-`), never a keyword.
fn package_name(name: &str) -> String {
    let base: String = name
        .chars()
        .map(|c| {
            if c == '.' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let starts_with_letter = base.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_with_letter || RESERVED.contains(&base.as_str()) {
        format!("plugin-{base}")
    } else {
        base
    }
}

/// One file of a scaffold: its path in the project and its text (placeholders
/// not yet replaced).
struct File {
    path: &'static str,
    text: &'static str,
}

/// The files of one scaffold, the component's path in the project, and the
/// build command.
struct Scaffold {
    files: Vec<File>,
    component: String,
    build: String,
}

fn scaffold(lang: PluginLang, world: PluginWorld, name: &str, package: &str) -> Scaffold {
    let file = |path, text| File { path, text };
    let w = world.wit();
    let mut files = match (lang, world) {
        (PluginLang::Rust, _) => vec![
            file("Cargo.toml", rust::CARGO_TOML),
            file(
                "src/lib.rs",
                match world {
                    PluginWorld::Operator => rust::OPERATOR,
                    PluginWorld::SourceAdapter => rust::ADAPTER,
                },
            ),
            file("README.md", rust::README),
            file(".gitignore", rust::GITIGNORE),
        ],
        (PluginLang::Python, PluginWorld::Operator) => vec![
            file("app.py", python::OPERATOR_APP),
            file("conditions.py", python::OPERATOR_CONDITIONS),
            file("WORLD", "{{world}}\n"),
            file("README.md", python::README),
            file(".gitignore", python::GITIGNORE),
        ],
        (PluginLang::Python, PluginWorld::SourceAdapter) => vec![
            file("app.py", python::ADAPTER_APP),
            file("WORLD", "{{world}}\n"),
            file("README.md", python::README),
            file(".gitignore", python::GITIGNORE),
        ],
        (PluginLang::Js, _) => vec![
            file("package.json", js::PACKAGE_JSON),
            file(
                "app.js",
                match world {
                    PluginWorld::Operator => js::OPERATOR,
                    PluginWorld::SourceAdapter => js::ADAPTER,
                },
            ),
            file("README.md", js::README),
            file(".gitignore", js::GITIGNORE),
        ],
    };
    files.extend(WIT.iter().map(|(path, text)| file(path, text)));
    let (component, build) = match lang {
        PluginLang::Rust => (
            format!(
                "target/wasm32-wasip2/release/{}.wasm",
                package.replace('-', "_")
            ),
            "cargo build --release --target wasm32-wasip2".to_string(),
        ),
        PluginLang::Python => (
            format!("{name}.wasm"),
            format!("componentize-py -d wit -w {w} componentize app -o {name}.wasm"),
        ),
        PluginLang::Js => (
            format!("{name}.wasm"),
            "npm install && npm run build".into(),
        ),
    };
    Scaffold {
        files,
        component,
        build,
    }
}

/// Replaces the placeholders; `{{try}}` first, since its text holds others.
fn render(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (key, value) in vars {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

/// A refusal of `plugin new`: printed as JSON, exit 1.
fn refuse(field: &str, message: String) -> ExitCode {
    println!(
        "{}",
        json!({"error": {"code": "invalid", "field": field, "message": message}})
    );
    ExitCode::from(1)
}

/// `plugin new`: writes a working project for `world` in `lang` under `dir/name`.
pub fn new(name: &str, lang: PluginLang, world: PluginWorld, dir: &Path) -> Result<ExitCode> {
    if let Err(message) = check_name(name) {
        return Ok(refuse("name", message));
    }
    let target = dir.join(name);
    match std::fs::symlink_metadata(&target) {
        Ok(meta) if !meta.is_dir() => {
            return Ok(refuse(
                "dir",
                format!("{} exists and is not a directory", target.display()),
            ));
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(&target)
                .with_context(|| format!("cannot read {}", target.display()))?;
            if entries.next().is_some() {
                return Ok(refuse(
                    "dir",
                    format!(
                        "{} exists and is not empty; choose another name or --dir",
                        target.display()
                    ),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot inspect {}: {e}", target.display()),
    }
    let package = package_name(name);
    let Scaffold {
        files,
        component,
        build,
    } = scaffold(lang, world, name, &package);
    let artifact = component
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".wasm"))
        .unwrap_or(name)
        .to_string();
    let try_it = match world {
        PluginWorld::Operator => TRY_OPERATOR,
        PluginWorld::SourceAdapter => TRY_ADAPTER,
    };
    let vars = [
        ("try", try_it),
        ("name", name),
        ("package", &package),
        ("artifact", &artifact),
        ("world", world.wit()),
        ("component", &component),
    ];
    let mut written = Vec::new();
    for f in &files {
        let path = target.join(f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, render(f.text, &vars))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(f.path);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "created": target.display().to_string(),
            "name": name,
            "lang": lang.as_str(),
            "world": world.wit(),
            "files": written,
            "build": build,
            "component": component,
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

/// Splits `KEY=VALUE` arguments; `what` names the flag in errors.
fn pairs(items: &[String], what: &str) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{what} {item:?} is not KEY=VALUE"),
        })
        .collect()
}

/// The name a component is loaded under: its file stem when that is a valid
/// plugin name, else `plugin`.
fn load_name(file: &Path) -> String {
    file.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| check_name(s).is_ok())
        .unwrap_or("plugin")
        .to_string()
}

/// A failed call: printed as JSON, exit 1.
fn call_failed(world: &str, plugin: &LoadedPlugin, during: &str, e: &CallError) -> ExitCode {
    println!(
        "{}",
        json!({
            "world": world,
            "plugin": plugin.description.name,
            "error": {"kind": e.kind(), "during": during, "message": e.to_string()},
        })
    );
    ExitCode::from(1)
}

/// `plugin test`: loads `file` and runs one call; prints the result as JSON.
///
/// The plugin runs on a thread of its own, outside the async runtime, as in
/// the router (`spawn_blocking`): WASI's streams block on a runtime of their
/// own, which a runtime thread must not do (a guest's panic message would
/// abort the process instead of becoming a trap).
pub fn test(
    file: &Path,
    arg: Option<&str>,
    input: &str,
    headers: &[String],
    settings: &[String],
    deadline: Option<std::time::Duration>,
) -> Result<ExitCode> {
    std::thread::scope(|s| {
        s.spawn(|| test_here(file, arg, input, headers, settings, deadline))
            .join()
            .unwrap_or_else(|_| bail!("plugin test: the call thread panicked"))
    })
}

fn test_here(
    file: &Path,
    arg: Option<&str>,
    input: &str,
    headers: &[String],
    settings: &[String],
    deadline: Option<std::time::Duration>,
) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    check_component(file, &bytes)?;
    let settings: BTreeMap<String, String> = pairs(settings, "--set")?.into_iter().collect();
    let headers = pairs(headers, "--header")?;
    let defaults = HostConfig::default();
    let host = PluginHost::new(HostConfig {
        cache_dir: std::env::var_os(CACHE_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
        operator_deadline: deadline.unwrap_or(defaults.operator_deadline),
        prepare_deadline: deadline.unwrap_or(defaults.prepare_deadline),
        adapter_deadline: deadline.unwrap_or(defaults.adapter_deadline),
        ..defaults
    })
    .context("cannot start the plugin host")?;
    let name = load_name(file);
    let plugin = match host.load_with_settings(&bytes, &name, settings) {
        Ok(p) => p,
        Err(LoadError::Describe { source, .. }) => {
            println!(
                "{}",
                json!({"error": {"kind": source.kind(), "during": "describe", "message": source.to_string()}})
            );
            return Ok(ExitCode::from(1));
        }
        Err(e) => bail!("{}: {e}", file.display()),
    };
    match &plugin.kind {
        PluginKind::Operator(op) => {
            if !headers.is_empty() {
                bail!(
                    "--header is for source adapters; {} is an operator",
                    file.display()
                );
            }
            let Some(arg) = arg else {
                bail!(
                    "{} is an operator: --arg is required (the operator's argument as JSON, e.g. --arg '\"prod\"')",
                    file.display()
                );
            };
            let argument: serde_json::Value = serde_json::from_str(arg).with_context(|| {
                format!("--arg is not JSON: {arg:?} (a string needs quotes: '\"prod\"')")
            })?;
            let input_json: serde_json::Value = serde_json::from_str(input).with_context(|| {
                format!("--input is not JSON: {input:?} (a string needs quotes: '\"2.4.1\"')")
            })?;
            let value = Value::from_json(&input_json, "input")
                .map_err(|e| anyhow::anyhow!("--input: {e}"))?;
            let base = json!({
                "world": "operator",
                "plugin": plugin.description.name,
                "version": plugin.description.version,
                "argument": argument,
                "value": input_json,
            });
            let condition = match op.prepare_condition(&argument) {
                Ok(Ok(c)) => c,
                Ok(Err(refusal)) => {
                    println!("{}", with(base, "refused", json!(refusal)));
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => return Ok(call_failed("operator", &plugin, "prepare", &e)),
            };
            match condition.test_value(&value) {
                Ok(Ok(matches)) => println!("{}", with(base, "matches", json!(matches))),
                // The plugin's own error for this value: "does not match".
                Ok(Err(message)) => {
                    let out = with(base, "matches", json!(false));
                    println!("{}", with(out, "error", json!(message)));
                }
                Err(e) => return Ok(call_failed("operator", &plugin, "test", &e)),
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginKind::Adapter(adapter) => {
            if arg.is_some() {
                bail!(
                    "--arg is for operators; {} is a source adapter",
                    file.display()
                );
            }
            let body = read_body(input)?;
            let mut envelope =
                Envelope::new(Transport::Http, format!("/ingest/{}", plugin.name), body);
            for (k, v) in headers {
                envelope = envelope.with_header(k.to_ascii_lowercase(), v);
            }
            envelope.metadata.push(("method".into(), "POST".into()));
            let base = json!({
                "world": "source-adapter",
                "plugin": plugin.description.name,
                "version": plugin.description.version,
            });
            let out = match adapter.decode(&envelope) {
                Ok(signals) => {
                    let signals: Vec<serde_json::Value> = signals
                        .iter()
                        .map(serde_json::to_value)
                        .collect::<Result<_, _>>()?;
                    with(base, "signals", json!(signals))
                }
                Err(DecodeError::Reject(reason)) => with(base, "rejected", json!(reason)),
                Err(DecodeError::Retry(reason)) => with(base, "retry", json!(reason)),
                // The host refuses what the plugin returned: the router rejects
                // the message too.
                Err(
                    e @ (DecodeError::TooManySignals { .. } | DecodeError::InvalidSignal { .. }),
                ) => {
                    let out = with(base, "rejected", json!(e.to_string()));
                    with(out, "by", json!("host"))
                }
                Err(DecodeError::Call(e)) => {
                    return Ok(call_failed("source-adapter", &plugin, "decode", &e));
                }
            };
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A clear word for the two usual mistakes before wasmtime's own message: a
/// file that is not WebAssembly, and a core module instead of a component.
fn check_component(file: &Path, bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(b"\0asm") {
        bail!(
            "{} is not a WebAssembly component (it does not start with the \\0asm header)",
            file.display()
        );
    }
    // The preamble's version and layer: 1 0 0 0 for a core module, 0x0d 0 1 0
    // for a component.
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        bail!(
            "{} is a core WebAssembly module, not a component: build for wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
            file.display()
        );
    }
    Ok(())
}

/// `base` with one more field.
fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    if let Some(map) = base.as_object_mut() {
        map.insert(key.to_string(), value);
    }
    base
}

/// The body of an adapter test: the file `input`, or stdin for `-`.
fn read_body(input: &str) -> Result<Vec<u8>> {
    if input == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .context("cannot read the body from stdin")?;
        Ok(body)
    } else {
        std::fs::read(input).with_context(|| format!("cannot read the body from {input}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_host_rule() {
        assert!(check_name("semver").is_ok());
        assert!(check_name("my.hook-2_x").is_ok());
        assert!(check_name(&"a".repeat(64)).is_ok());
        for bad in ["", ".", "..", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn package_names_are_valid_crate_names() {
        assert_eq!(package_name("contains"), "contains");
        assert_eq!(package_name("My.Hook"), "my-hook");
        assert_eq!(package_name("2fa"), "plugin-2fa");
        assert_eq!(package_name("_x"), "plugin-_x");
        assert_eq!(package_name("test"), "plugin-test");
    }

    #[test]
    fn render_replaces_nested_placeholders() {
        let out = render(
            "# {{name}}\n{{try}}",
            &[
                ("try", "run {{component}}"),
                ("name", "n"),
                ("component", "c.wasm"),
            ],
        );
        assert_eq!(out, "# n\nrun c.wasm");
    }

    /// The Rust template asks for the wit-bindgen signalbox's plugins use.
    #[test]
    fn rust_template_uses_the_plugins_wit_bindgen() -> Result<()> {
        let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/Cargo.toml");
        let text = std::fs::read_to_string(&plugins)?;
        let line = |t: &str| -> Option<String> {
            t.lines()
                .find(|l| l.starts_with("wit-bindgen ="))
                .map(str::to_string)
        };
        let theirs = line(&text).context("no wit-bindgen in plugins/Cargo.toml")?;
        let ours = line(rust::CARGO_TOML).context("no wit-bindgen in the template")?;
        assert_eq!(ours, theirs);
        Ok(())
    }
}
