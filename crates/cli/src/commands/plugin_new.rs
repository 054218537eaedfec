//! `plugin new`: scaffolds a plugin project; needs no running router.
//!
//! It writes a project from the templates in `crates/cli/templates/`
//! (embedded with `include_str!`, placeholders `{{name}}`, `{{package}}`,
//! `{{artifact}}`, `{{world}}`, `{{component}}`, `{{try}}`) plus a copy of the
//! repository's `wit/`, and refuses a bad name or a non-empty target
//! directory (printed as JSON, exit 1). The name rule is the plugin host's,
//! which `plugin test` uses too ([`check_name`]).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;

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
pub(super) fn check_name(name: &str) -> Result<(), String> {
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
