//! The `signalbox` binary, run as a process: `dev` end to end, the client verbs
//! against a real router, and the errors a user sees when NATS is down.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use signalbox_testkit::{TestNats, TestRouter, WAIT, init_logs, next_message};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signalbox"));
    cmd.current_dir(repo_root());
    cmd.env_remove("RUST_LOG");
    cmd
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str], url: &str) -> Result<Output> {
    let mut cmd = bin();
    cmd.args(args).env("SIGNALBOX_NATS_URL", url);
    cmd.output().context("running signalbox")
}

fn stdout_json(out: &Output) -> Result<Value> {
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "stdout is not JSON: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn pid_alive(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

#[test]
fn every_verb_has_help_with_an_example() -> Result<()> {
    for verb in [
        vec!["serve"],
        vec!["dev"],
        vec!["publish"],
        vec!["sub", "add"],
        vec!["sub", "ls"],
        vec!["sub", "show"],
        vec!["sub", "rm"],
        vec!["signals", "ls"],
        vec!["signals", "show"],
        vec!["explain"],
        vec!["wait"],
        vec!["replay"],
        vec!["lineage", "signal"],
        vec!["lineage", "export"],
        vec!["firing", "show"],
        vec!["pattern", "test"],
        vec!["pattern", "check"],
        vec!["plugin", "new"],
        vec!["plugin", "test"],
        vec!["plugin", "deploy"],
        vec!["plugin", "ls"],
        vec!["plugin", "inspect"],
        vec!["plugin", "rollback"],
        vec!["plugin", "rm"],
    ] {
        let mut args = verb.clone();
        args.push("--help");
        let out = bin().args(&args).output()?;
        ensure!(out.status.success(), "{verb:?} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            text.contains("Example:\n  signalbox"),
            "{verb:?} --help has no example:\n{text}"
        );
    }
    Ok(())
}

#[test]
fn publish_while_nats_is_down_says_so() -> Result<()> {
    let port = signalbox_testkit::free_port()?;
    let out = run(
        &["publish", "table_updated", "--param", "x=1"],
        &format!("nats://127.0.0.1:{port}"),
    )?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to NATS"), "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_verbs_against_a_running_router() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let _router = TestRouter::start(&nats).await?;
    let url = nats.url();
    let client = nats.client().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;

    let out = run(
        &["sub", "add", "examples/subscriptions/big-tables.yaml"],
        &url,
    )?;
    ensure!(out.status.success(), "sub add: {out:?}");
    assert_eq!(stdout_json(&out)?["outcome"], "created");

    let out = run(&["sub", "ls"], &url)?;
    assert_eq!(stdout_json(&out)?["subscriptions"][0]["id"], "big-tables");
    let out = run(&["sub", "show", "big-tables"], &url)?;
    assert_eq!(stdout_json(&out)?["subscription"]["version"], 1);

    let out = run(
        &["publish", "--file", "examples/signals/table_updated.json"],
        &url,
    )?;
    ensure!(out.status.success(), "publish: {out:?}");
    let ack = stdout_json(&out)?;
    assert_eq!(ack["matched"][0], "big-tables", "{ack}");
    next_message(&mut firings, WAIT).await?;

    let out = run(
        &[
            "publish",
            "table_updated",
            "--id",
            "flags-1",
            "-p",
            "table=prod.events",
            "-p",
            "rows=5",
            "-p",
            "owner.team=data",
        ],
        &url,
    )?;
    let ack = stdout_json(&out)?;
    assert_eq!(ack["seq"], 2, "{ack}");
    assert_eq!(ack["matched"].as_array().map(Vec::len), Some(0), "{ack}");

    let out = run(&["signals", "ls"], &url)?;
    assert_eq!(stdout_json(&out)?["names"][0]["last_seq"], 2);
    let out = run(&["signals", "show", "table_updated:2"], &url)?;
    let shown = stdout_json(&out)?;
    assert_eq!(shown["signal"]["signal"]["params"]["owner"]["team"], "data");
    assert_eq!(shown["signal"]["signal"]["params"]["rows"], 5);

    let out = run(
        &[
            "explain",
            "--sub",
            "big-tables",
            "--signal",
            "table_updated:2",
        ],
        &url,
    )?;
    let explained = stdout_json(&out)?;
    assert_eq!(explained["matches"], false, "{explained}");

    // Replay: the one matching signal already fired live, so nothing fires again;
    // progress is drawn on stderr.
    let out = run(&["replay", "--sub", "big-tables", "--page", "1"], &url)?;
    ensure!(out.status.success(), "replay: {out:?}");
    let summary = stdout_json(&out)?;
    assert_eq!(summary["processed"], 2, "{summary}");
    assert_eq!(summary["matched"], 1, "{summary}");
    assert_eq!(summary["fired"], 0, "{summary}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2/2 signals"));

    let out = run(&["lineage", "export", "--format", "dot"], &url)?;
    ensure!(out.status.success(), "lineage export: {out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("digraph lineage {"));

    // An error reply is exit code 1 and names the field.
    let out = run(&["publish", "bad name"], &url)?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout_json(&out)?["error"]["field"], "name");

    let out = run(&["sub", "rm", "big-tables"], &url)?;
    assert_eq!(stdout_json(&out)?["removed"], true);
    let out = run(&["sub", "show", "big-tables"], &url)?;
    assert_eq!(out.status.code(), Some(1));
    Ok(())
}

/// Reads the child's stdout until a line contains `needle`.
fn wait_for_line(child: &mut Child, needle: &str, timeout: Duration) -> Result<Vec<String>> {
    let stdout = child.stdout.take().context("piped stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut lines = Vec::new();
    while start.elapsed() < timeout {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let found = line.contains(needle);
                lines.push(line);
                if found {
                    return Ok(lines);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    bail!("never printed {needle:?}; printed:\n{}", lines.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_routes_an_example_end_to_end_and_exits_cleanly_on_sigint() -> Result<()> {
    init_logs();
    let dir = tempfile::tempdir()?;
    let port = signalbox_testkit::free_port()?;
    let url = format!("nats://127.0.0.1:{port}");
    let stderr_path = dir.path().join("dev.stderr");
    let mut child = bin()
        .args(["dev", "--port", &port.to_string(), "--data-dir"])
        .arg(dir.path())
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()?;
    let lines = wait_for_line(&mut child, "nats-server pid", Duration::from_secs(30))?;
    let nats_pid: u32 = lines
        .iter()
        .find_map(|l| {
            l.split("nats-server pid ")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|d| d.parse().ok())
        })
        .context("dev prints the nats-server pid")?;
    ensure!(pid_alive(nats_pid), "nats-server {nats_pid} runs");

    let client = async_nats::connect(&url).await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;
    let out = run(
        &["publish", "--file", "examples/signals/table_updated.json"],
        &url,
    )?;
    ensure!(out.status.success(), "publish via dev: {out:?}");
    let ack = stdout_json(&out)?;
    assert_eq!(ack["matched"][0], "big-tables", "{ack}");
    let firing = next_message(&mut firings, WAIT).await?;
    let body: Value = serde_json::from_slice(&firing.payload)?;
    assert_eq!(body["params"]["location"], "s3://bucket/events/20261126/");

    // SIGINT: the router drains, nats-server stops, the process exits 0.
    let pid = i32::try_from(child.id())?;
    #[allow(unsafe_code)]
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    ensure!(rc == 0, "kill(SIGINT) failed");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            bail!("signalbox dev did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "dev exit status {status:?}; stderr:\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    let start = Instant::now();
    while pid_alive(nats_pid) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure!(!pid_alive(nats_pid), "nats-server {nats_pid} left behind");
    Ok(())
}

#[test]
fn pattern_test_and_check_work_locally() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pattern = dir.path().join("pattern.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &pattern,
        r#"{"table": ["prod.events"], "rows": [{"numeric": [">=", 1000000]}]}"#,
    )?;
    std::fs::write(&bad, r#"{"rows": [{"numeric": ["=>", 1]}]}"#)?;
    let signal = repo_root().join("examples/signals/table_updated.json");
    let small = dir.path().join("small.json");
    std::fs::write(&small, r#"{"table": "prod.events", "rows": 5}"#)?;

    let out = bin()
        .args(["pattern", "test", "--pattern"])
        .arg(&pattern)
        .arg("--signal")
        .arg(&signal)
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let v = stdout_json(&out)?;
    assert_eq!(v["matches"], true, "{v}");
    assert!(v["explain"].as_array().is_some_and(|a| a.len() == 2), "{v}");

    // A params-only file that does not match: still exit 0, matches false, and
    // the failed condition is named with the value seen.
    let out = bin()
        .args(["pattern", "test", "--pattern"])
        .arg(&pattern)
        .arg("--signal")
        .arg(&small)
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let v = stdout_json(&out)?;
    assert_eq!(v["matches"], false, "{v}");
    let failed: Vec<&Value> = v["explain"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["verdict"] == "failed").collect())
        .unwrap_or_default();
    assert_eq!(failed.len(), 1, "{v}");
    assert_eq!(failed[0]["path"], "rows");
    assert_eq!(failed[0]["seen"], 5);

    let out = bin().args(["pattern", "check"]).arg(&pattern).output()?;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout_json(&out)?["valid"], true);

    let out = bin().args(["pattern", "check"]).arg(&bad).output()?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = stdout_json(&out)?;
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("rows"), "{v}");
    assert!(message.contains("=>"), "{v}");
    Ok(())
}

#[test]
fn sub_check_validates_files_with_the_schema_then_the_routers_rules() -> Result<()> {
    // Both examples pass: one JSON line each, exit 0, no router needed.
    let out = bin()
        .args(["sub", "check", "examples/subscriptions/big-tables.yaml"])
        .arg("examples/subscriptions/watermark.yaml")
        .output()?;
    ensure!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["valid"] == true), "{lines:?}");
    assert_eq!(lines[0]["id"], "big-tables");

    // A schema error names the field by its JSON pointer and the rule.
    let bad = "crates/cli/tests/fixtures/bad-subscriptions/wildcard-subject.yaml";
    let out = bin().args(["sub", "check", bad]).output()?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = stdout_json(&out)?;
    assert_eq!(v["valid"], false);
    assert_eq!(
        v["schema_errors"][0]["pointer"], "/action/trigger/subject",
        "{v}"
    );
    assert_eq!(v["schema_errors"][0]["rule"], "not", "{v}");

    // What the schema cannot see, the router's rules catch: an alias twice.
    let dir = tempfile::tempdir()?;
    let twice = dir.path().join("twice.yaml");
    std::fs::write(
        &twice,
        "id: twice\nsignals: [{name: a, as: o}, {name: b, as: o}]\njoin: {on: [o.x, o.y]}\naction: {publish: {subject: runs.x}}\n",
    )?;
    let out = bin().args(["sub", "check"]).arg(&twice).output()?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = stdout_json(&out)?;
    assert_eq!(v["error"]["field"], "signals[1].as", "{v}");
    Ok(())
}
