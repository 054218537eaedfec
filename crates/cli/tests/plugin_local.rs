//! `signalbox plugin new` and `signalbox plugin test`, run as processes. Every
//! scaffold (Rust, Python, JavaScript; operator and source adapter) is written
//! into a temporary directory, built with its own toolchain the way its README
//! says, and called through `plugin test`, asserting the real answers. `plugin
//! test` also runs on components of `plugins/` (`semver`, `webhook-json`, the
//! hostile operator) and on the inputs it must refuse.
//!
//! Rust scaffolds build into `plugins/target/scaffold` (kept between runs, so
//! only the first run compiles wit-bindgen). Python and JavaScript components
//! are 12–18 MB and their toolchains do not build them byte for byte the same
//! twice, so a built component is kept under the Cargo target's tmp dir, keyed
//! by the SHA-256 of the scaffold's files and of the toolchain version, and
//! rebuilt only when those change (like `scripts/build-plugins.sh`); the
//! compiled-artefact cache (`SIGNALBOX_PLUGIN_CACHE_DIR`) then hits on later
//! runs. The first run compiles each with the debug build of wasmtime, minutes
//! per component. componentize-py and jco (in `plugins/js/node_modules`) are
//! installed by `scripts/setup.sh --test`; without them these tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use signalbox_testkit::plugin_component;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The compiled-artefact cache `plugin test` uses in these tests.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-test-cache")
}

fn signalbox(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signalbox"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env("SIGNALBOX_PLUGIN_CACHE_DIR", cache_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running signalbox");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// What one run printed: exit code, stdout as JSON (`Null` when empty), stderr.
struct Run {
    code: i32,
    json: Value,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    run_with_stdin(args, None)
}

fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let out = signalbox(args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\nstderr: {stderr}"))
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

/// Runs `plugin test` and expects exit 0.
fn plugin_test(args: &[&str]) -> Value {
    plugin_test_stdin(args, None)
}

fn plugin_test_stdin(args: &[&str], stdin: Option<&[u8]>) -> Value {
    let mut all = vec!["plugin", "test"];
    all.extend_from_slice(args);
    // The router's deadlines are milliseconds; a loaded CI machine can miss
    // them on a first call. These cases test answers, not speed.
    if !args.contains(&"--deadline") {
        all.extend_from_slice(&["--deadline", "10s"]);
    }
    let r = run_with_stdin(&all, stdin);
    assert_eq!(
        r.code, 0,
        "signalbox {all:?}: exit {}\nstdout: {}\nstderr: {}",
        r.code, r.json, r.stderr
    );
    r.json
}

/// Runs `plugin new` in `dir` and returns the project directory and the report.
fn new_project(dir: &Path, lang: &str, world: &str, name: &str) -> (PathBuf, Value) {
    let r = run(&[
        "plugin",
        "new",
        "--lang",
        lang,
        "--world",
        world,
        name,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "plugin new: {} {}", r.json, r.stderr);
    let project = dir.join(name);
    assert_eq!(r.json["created"], json!(project.display().to_string()));
    assert_eq!(r.json["world"], json!(world));
    for f in r.json["files"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        assert!(
            project.join(f).is_file(),
            "{f} was reported but not written"
        );
    }
    for wit in ["adapter", "conditions", "host", "types", "worlds"] {
        let ours = std::fs::read_to_string(project.join(format!("wit/{wit}.wit"))).unwrap();
        let theirs = std::fs::read_to_string(repo_root().join(format!("wit/{wit}.wit"))).unwrap();
        assert_eq!(ours, theirs, "wit/{wit}.wit is not the repository's");
    }
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let build = r.json["build"].as_str().unwrap();
    let component = r.json["component"].as_str().unwrap();
    for needle in [
        build,
        "signalbox plugin test",
        "signalbox plugin deploy",
        component,
    ] {
        assert!(
            readme.contains(needle),
            "the README does not say {needle:?}"
        );
    }
    assert!(
        !readme.contains("{{"),
        "a placeholder is left in the README"
    );
    (project, r.json)
}

/// Builds a Rust scaffold with the command it reports, into the shared target.
fn build_rust(project: &Path, report: &Value) -> PathBuf {
    let target = repo_root().join("plugins/target/scaffold");
    let build = report["build"].as_str().unwrap();
    assert_eq!(build, "cargo build --release --target wasm32-wasip2");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(project)
        // The guest must not inherit the host build's target settings.
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("running cargo");
    assert!(status.success(), "building {} failed", project.display());
    let component = report["component"].as_str().unwrap();
    let file = component
        .strip_prefix("target/")
        .expect("a Rust component is under target/");
    let wasm = target.join(file);
    assert!(wasm.is_file(), "no component {}", wasm.display());
    wasm
}

/// SHA-256 of a project's files (relative path and contents, sorted) and `extra`.
fn project_hash(project: &Path, extra: &[u8]) -> String {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(project, &mut files);
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(
            f.strip_prefix(project)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        h.update([0]);
        h.update(std::fs::read(&f).unwrap());
        h.update([0]);
    }
    h.update(extra);
    hex::encode(h.finalize())
}

/// The component of a Python or JavaScript scaffold: the one built before from
/// the same files and toolchain, else built now by `build` (in the project) and
/// kept.
fn build_kept(project: &Path, report: &Value, toolchain: &[u8], build: impl FnOnce()) -> PathBuf {
    let kept_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scaffold-components");
    std::fs::create_dir_all(&kept_dir).unwrap();
    let kept = kept_dir.join(format!("{}.wasm", project_hash(project, toolchain)));
    if kept.is_file() {
        eprintln!(
            "{}: same sources as {}, not rebuilt",
            project.display(),
            kept.display()
        );
        return kept;
    }
    build();
    let built = project.join(report["component"].as_str().unwrap());
    assert!(built.is_file(), "no component {}", built.display());
    let tmp = kept.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::copy(&built, &tmp).unwrap();
    std::fs::rename(&tmp, &kept).unwrap();
    kept
}

/// Builds a Python scaffold with the componentize-py command it reports.
fn build_python(project: &Path, report: &Value) -> PathBuf {
    let version = Command::new("componentize-py").arg("--version").output();
    let version = match version {
        Ok(o) if o.status.success() => o.stdout,
        _ => panic!(
            "the Python scaffold tests need componentize-py (pip install componentize-py==0.25.1; scripts/setup.sh --test installs it)"
        ),
    };
    let build = report["build"].as_str().unwrap().to_string();
    assert!(build.starts_with("componentize-py "), "{build}");
    build_kept(project, report, &version, || {
        let status = Command::new("sh")
            .args(["-c", &build])
            .current_dir(project)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .status()
            .expect("running componentize-py");
        assert!(status.success(), "{build} failed in {}", project.display());
    })
}

/// Builds a JavaScript scaffold with `npm run build`, taking jco and
/// ComponentizeJS from `plugins/js/node_modules` (the versions the scaffold
/// pins) instead of downloading them again with `npm install`.
fn build_js(project: &Path, report: &Value) -> PathBuf {
    let js = repo_root().join("plugins/js");
    let bin = js.join("node_modules/.bin");
    assert!(
        bin.join("componentize-js").is_file(),
        "the JavaScript scaffold tests need ComponentizeJS in plugins/js/node_modules (scripts/setup.sh --test runs npm ci there)"
    );
    let lock = std::fs::read(js.join("package-lock.json")).unwrap();
    assert_eq!(report["build"], json!("npm install && npm run build"));
    build_kept(project, report, &lock, || {
        let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        let status = Command::new("npm")
            .args(["run", "build"])
            .current_dir(project)
            .env("PATH", path)
            .status()
            .expect("running npm");
        assert!(
            status.success(),
            "npm run build failed in {}",
            project.display()
        );
    })
}

/// The scaffold operator: "a string containing the argument".
fn contains_operator_cases(wasm: &Path, name: &str) {
    let wasm = wasm.to_str().unwrap();
    let out = plugin_test(&[wasm, "--arg", "\"prod\"", "--input", "\"eu-prod-1\""]);
    assert_eq!(
        out,
        json!({"world": "operator", "plugin": name, "version": "0.1.0",
               "argument": "prod", "value": "eu-prod-1", "matches": true})
    );
    let out = plugin_test(&[wasm, "--arg", "\"prod\"", "--input", "\"staging\""]);
    assert_eq!(out["matches"], json!(false), "{out}");
    let out = plugin_test(&[wasm, "--arg", "\"4\"", "--input", "42"]);
    assert_eq!(
        out["matches"],
        json!(false),
        "a number never matches: {out}"
    );
    let out = plugin_test(&[wasm, "--arg", "42", "--input", "\"x\""]);
    assert_eq!(
        out["refused"],
        json!("the argument must be a string, not 42"),
        "{out}"
    );
    assert!(out.get("matches").is_none(), "{out}");
}

/// The scaffold adapter: a JSON object body becomes one signal named by `name`.
fn json_adapter_cases(wasm: &Path, name: &str, dir: &Path) {
    let body = dir.join("body.json");
    std::fs::write(
        &body,
        r#"{"id": "build-17", "service": "api", "version": "2.4.1"}"#,
    )
    .unwrap();
    let wasm = wasm.to_str().unwrap();
    let body = body.to_str().unwrap();
    let out = plugin_test(&[
        wasm,
        "--input",
        body,
        "--set",
        "name=deployed",
        "--header",
        "Content-Type=application/json",
    ]);
    assert_eq!(
        out,
        json!({"world": "source-adapter", "plugin": name, "version": "0.1.0",
               "signals": [{"name": "deployed", "id": "build-17",
                            "params": {"id": "build-17", "service": "api", "version": "2.4.1"}}]})
    );
    // No id in the body: no id (the router assigns one).
    let out = plugin_test_stdin(
        &[wasm, "--input", "-", "--set", "name=deployed"],
        Some(b"{\"n\": 3}"),
    );
    assert_eq!(
        out["signals"],
        json!([{"name": "deployed", "params": {"n": 3}}])
    );
    let out = plugin_test_stdin(
        &[wasm, "--input", "-", "--set", "name=deployed"],
        Some(b"not json"),
    );
    let rejected = out["rejected"].as_str().unwrap_or_else(|| panic!("{out}"));
    assert!(rejected.starts_with("the body is not JSON"), "{out}");
    let out = plugin_test_stdin(
        &[wasm, "--input", "-", "--set", "name=deployed"],
        Some(b"[1, 2]"),
    );
    assert_eq!(out["rejected"], json!("the body must be a JSON object"));
    let out = plugin_test(&[wasm, "--input", body]);
    assert_eq!(out["retry"], json!("setting name is required"));
    // A name the host refuses: rejected by the host, like in the router.
    let out = plugin_test(&[wasm, "--input", body, "--set", "name=bad name"]);
    assert_eq!(out["by"], json!("host"), "{out}");
}

#[test]
fn rust_operator_scaffold_builds_and_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, report) = new_project(tmp.path(), "rust", "operator", "contains-op");
    let cargo = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("\n[workspace]\n"), "not standalone: {cargo}");
    assert!(cargo.contains("crate-type = [\"cdylib\"]"), "{cargo}");
    assert_eq!(
        report["component"],
        json!("target/wasm32-wasip2/release/contains_op.wasm")
    );
    let wasm = build_rust(&project, &report);
    contains_operator_cases(&wasm, "contains-op");
}

#[test]
fn rust_adapter_scaffold_builds_and_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, report) = new_project(tmp.path(), "rust", "source-adapter", "json-hook");
    let wasm = build_rust(&project, &report);
    json_adapter_cases(&wasm, "json-hook", tmp.path());
}

#[test]
fn python_operator_scaffold_builds_and_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, report) = new_project(tmp.path(), "python", "operator", "py-contains");
    assert_eq!(
        std::fs::read_to_string(project.join("WORLD")).unwrap(),
        "operator\n"
    );
    assert!(project.join("conditions.py").is_file());
    let wasm = build_python(&project, &report);
    contains_operator_cases(&wasm, "py-contains");
}

#[test]
fn python_adapter_scaffold_builds_and_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, report) = new_project(tmp.path(), "python", "source-adapter", "py-hook");
    let wasm = build_python(&project, &report);
    json_adapter_cases(&wasm, "py-hook", tmp.path());
}

#[test]
fn js_operator_scaffold_builds_and_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, report) = new_project(tmp.path(), "js", "operator", "js-contains");
    let wasm = build_js(&project, &report);
    contains_operator_cases(&wasm, "js-contains");
}

#[test]
fn js_adapter_scaffold_builds_and_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, report) = new_project(tmp.path(), "js", "source-adapter", "js-hook");
    let wasm = build_js(&project, &report);
    json_adapter_cases(&wasm, "js-hook", tmp.path());
}

/// The JavaScript scaffold pins the jco and ComponentizeJS that build `plugins/js`.
#[test]
fn js_scaffold_pins_the_plugins_toolchain() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, _) = new_project(tmp.path(), "js", "operator", "pins");
    let ours: Value =
        serde_json::from_slice(&std::fs::read(project.join("package.json")).unwrap()).unwrap();
    let theirs: Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("plugins/js/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(ours["devDependencies"], theirs["devDependencies"]);
    assert_eq!(ours["name"], json!("pins"));
}

#[test]
fn the_semver_operator_from_plugins() {
    let wasm = plugin_component("operator_semver").unwrap();
    let wasm = wasm.to_str().unwrap();
    let out = plugin_test(&[wasm, "--arg", "\">=2.1.0 <3\"", "--input", "\"2.4.1\""]);
    assert_eq!(
        out,
        json!({"world": "operator", "plugin": "semver", "version": "0.1.0",
               "argument": ">=2.1.0 <3", "value": "2.4.1", "matches": true})
    );
    let out = plugin_test(&[wasm, "--arg", "\">=2.1.0 <3\"", "--input", "\"3.0.0\""]);
    assert_eq!(out["matches"], json!(false));
    // The plugin's error for a value counts as "does not match", and is shown.
    let out = plugin_test(&[wasm, "--arg", "\">=2.1.0 <3\"", "--input", "\"banana\""]);
    assert_eq!(out["matches"], json!(false));
    assert!(out["error"].is_string(), "{out}");
    // A bad argument is refused by prepare.
    let out = plugin_test(&[wasm, "--arg", "\">>nope\"", "--input", "\"1.0.0\""]);
    assert!(out["refused"].is_string(), "{out}");
}

#[test]
fn the_webhook_json_adapter_from_plugins() {
    let wasm = plugin_component("adapter_webhook_json").unwrap();
    let wasm = wasm.to_str().unwrap();
    let params = r#"params={"version": "/version", "tenant": "header:X-Tenant"}"#;
    let out = plugin_test_stdin(
        &[
            wasm,
            "--input",
            "-",
            "--set",
            "name-pointer=/event",
            "--set",
            "id-pointer=/delivery",
            "--set",
            params,
            "--header",
            "X-Tenant=acme",
        ],
        Some(br#"{"event": "model_published", "delivery": "d-1", "version": "1.2"}"#),
    );
    assert_eq!(
        out["signals"],
        json!([{"name": "model_published", "id": "d-1",
                "params": {"tenant": "acme", "version": "1.2"}}]),
        "{out}"
    );
    let out = plugin_test_stdin(
        &[wasm, "--input", "-", "--set", "name-pointer=/event"],
        Some(b"{"),
    );
    assert!(out["rejected"].is_string(), "{out}");
    let out = plugin_test_stdin(&[wasm, "--input", "-"], Some(b"{}"));
    assert!(out["retry"].is_string(), "{out}");
}

/// A call that traps or runs out of time exits 1 with the error.
#[test]
fn a_failed_call_exits_1() {
    let wasm = plugin_component("hostile_operator").unwrap();
    let wasm = wasm.to_str().unwrap();
    // A trap must be reported as a trap even on a loaded machine: give it
    // time; the loop is stopped by a short deadline.
    for (mode, kind, deadline) in [("trap", "trap", "10s"), ("loop", "timeout", "50ms")] {
        let r = run(&[
            "plugin",
            "test",
            wasm,
            "--arg",
            &format!("\"{mode}\""),
            "--input",
            "1",
            "--deadline",
            deadline,
        ]);
        assert_eq!(r.code, 1, "{mode}: {} {}", r.json, r.stderr);
        assert_eq!(r.json["error"]["kind"], json!(kind), "{}", r.json);
        assert_eq!(r.json["error"]["during"], json!("test"), "{}", r.json);
    }
}

#[test]
fn plugin_test_refuses_unusable_input() {
    let semver = plugin_component("operator_semver").unwrap();
    let semver = semver.to_str().unwrap();
    let webhook = plugin_component("adapter_webhook_json").unwrap();
    let webhook = webhook.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.wasm");
    std::fs::write(&text, "hello").unwrap();
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let missing = tmp.path().join("missing.wasm");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![semver, "--input", "\"2.4.1\""],
            "is an operator: --arg is required",
        ),
        (
            vec![semver, "--arg", "\">=1\"", "--input", "2.4.1.0"],
            "--input is not JSON",
        ),
        (
            vec![semver, "--arg", ">=1", "--input", "1"],
            "--arg is not JSON",
        ),
        (
            vec![
                semver, "--arg", "\">=1\"", "--input", "1", "--set", "novalue",
            ],
            "--set \"novalue\" is not KEY=VALUE",
        ),
        (
            vec![webhook, "--arg", "1", "--input", "-"],
            "--arg is for operators",
        ),
        (
            vec![webhook, "--input", "/nonexistent/body.json"],
            "cannot read the body from /nonexistent/body.json",
        ),
        (
            vec![text.to_str().unwrap(), "--input", "1"],
            "is not a WebAssembly component",
        ),
        (
            vec![core.to_str().unwrap(), "--input", "1"],
            "is a core WebAssembly module, not a component",
        ),
        (
            vec![missing.to_str().unwrap(), "--input", "1"],
            "cannot read",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["plugin", "test"];
        all.extend(args);
        let r = run(&all);
        assert_eq!(r.code, 2, "{all:?}: {} {}", r.json, r.stderr);
        assert!(
            r.stderr.contains(message),
            "{all:?}: stderr does not say {message:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn plugin_new_writes_every_language_and_world() {
    let tmp = tempfile::tempdir().unwrap();
    for lang in ["rust", "python", "js"] {
        for world in ["operator", "source-adapter"] {
            let name = format!("{lang}-{world}");
            let (project, report) = new_project(tmp.path(), lang, world, &name);
            for f in report["files"].as_array().unwrap() {
                let text = std::fs::read_to_string(project.join(f.as_str().unwrap())).unwrap();
                assert!(!text.contains("{{"), "{name}/{f}: a placeholder is left");
            }
            let main = match lang {
                "rust" => "src/lib.rs",
                "python" => "app.py",
                _ => "app.js",
            };
            let source = std::fs::read_to_string(project.join(main)).unwrap();
            assert!(
                source.contains(&name),
                "{name}/{main} does not describe itself"
            );
        }
    }
    // Names that are no valid crate names still make one.
    let (project, _) = new_project(tmp.path(), "rust", "operator", "2fa.check");
    let cargo = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"plugin-2fa-check\""), "{cargo}");
    // An existing empty directory is fine.
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    new_project(tmp.path(), "python", "operator", "empty");
}

#[test]
fn plugin_new_refuses_bad_names_and_used_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/keep.txt"), "mine").unwrap();
    std::fs::write(tmp.path().join("afile"), "mine").unwrap();
    for (name, field, message) in [
        ("bad name", "name", "is not valid"),
        ("..", "name", "is not valid"),
        ("", "name", "is not valid"),
        ("a/b", "name", "is not valid"),
        (&"x".repeat(65), "name", "is not valid"),
        ("taken", "dir", "exists and is not empty"),
        ("afile", "dir", "exists and is not a directory"),
    ] {
        let r = run(&[
            "plugin", "new", "--lang", "rust", "--world", "operator", name, "--dir", dir,
        ]);
        assert_eq!(r.code, 1, "{name:?}: {} {}", r.json, r.stderr);
        assert_eq!(
            r.json["error"]["field"],
            json!(field),
            "{name:?}: {}",
            r.json
        );
        let m = r.json["error"]["message"].as_str().unwrap();
        assert!(m.contains(message), "{name:?}: {m}");
    }
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path().join("taken")).unwrap().count(),
        1
    );
}
