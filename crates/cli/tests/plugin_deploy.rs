//! `signalbox plugin deploy | ls | inspect | rollback | rm` as a user runs
//! them, against a real router and nats-server: a Python component (~18 MB,
//! more than one NATS message) goes up in pieces and then serves a
//! subscription; the verbs' errors exit 1 with the reason.

use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use signalbox_testkit::{
    TestNats, TestRouter, WAIT, init_logs, next_message, publish_signal, python_plugin_component,
};

fn run(args: &[&str], url: &str) -> Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_remove("RUST_LOG")
        .env("SIGNALBOX_NATS_URL", url)
        // The deploy compiles an 18 MB component in the test's debug build of
        // the router: under a loaded full run it has taken longer than the
        // CLI's default 120 s for a deploy (the request timed out).
        .env("SIGNALBOX_REQUEST_TIMEOUT", "600s")
        .args(args)
        .output()
        .context("running signalbox")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_operator_is_deployed_in_pieces_and_used() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    // The case is about deploying and using the operator, not its deadlines:
    // the first calls of a freshly deployed Python component can overrun the
    // defaults on a loaded machine (seen in full local runs: a call past 5 ms
    // is a non-match, a `prepare` past 100 ms or an instance creation or
    // `describe` past 50 ms fails the deploy), so give it deadlines it cannot
    // miss.
    let router = TestRouter::start_configured(&nats, |c| {
        c.plugins.operator_deadline = std::time::Duration::from_secs(5);
        c.plugins.prepare_deadline = std::time::Duration::from_secs(5);
        c.plugins.adapter_deadline = std::time::Duration::from_secs(5);
    })
    .await?;
    let url = nats.url();
    let component = python_plugin_component("regex")?;
    let size = std::fs::metadata(&component)?.len();
    ensure!(
        size > 1024 * 1024,
        "the case needs a component larger than one NATS message"
    );

    let file = component.to_string_lossy().to_string();
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || run(&["plugin", "deploy", &file, "--name", "pyre"], &url)
    })
    .await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "deploy failed: {stderr}");
    ensure!(stderr.contains("pieces"), "sent in one piece? {stderr}");
    let deployed = stdout_json(&out)?;
    assert_eq!(deployed["outcome"], "deployed", "{deployed}");
    assert_eq!(deployed["plugin"]["world"], "operator");

    // The deployed Python operator serves a subscription.
    let client = nats.client().await?;
    router
        .add_subscription(
            &client,
            "id: tagged\nsignal: build\nwhere: {tag: [{pyre: 'v[0-9]+'}]}\naction: {trigger: {subject: runs.tagged}}",
        )
        .await?;
    let mut runs = client.subscribe("runs.tagged").await?;
    client.flush().await?;
    for (id, tag) in [("a", "latest"), ("b", "v12")] {
        let body = json!({"id": id, "params": {"tag": tag}});
        publish_signal(&client, "build", &body.to_string()).await?;
    }
    let msg = next_message(&mut runs, WAIT).await?;
    let fired: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(fired["signals"][0]["id"], "b", "{fired}");

    let ls = stdout_json(&run(&["plugin", "ls"], &url)?)?;
    assert_eq!(ls["plugins"][0]["name"], "pyre", "{ls}");
    assert_eq!(ls["plugins"][0]["source"], json!({"deployed": 1}));
    let inspect = stdout_json(&run(&["plugin", "inspect", "pyre"], &url)?)?;
    assert_eq!(inspect["plugin"]["used_by"], json!(["tagged"]), "{inspect}");
    assert!(
        inspect["plugin"]["stats"]["calls"].as_u64() >= Some(2),
        "{inspect}"
    );

    // Errors exit 1 and say why.
    let out = run(&["plugin", "rollback", "pyre"], &url)?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout_json(&out)?["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("first deployed version")
    );
    let out = run(&["plugin", "rm", "pyre"], &url)?;
    assert_eq!(out.status.code(), Some(1), "in use by `tagged`");
    let out = run(&["plugin", "inspect", "nope"], &url)?;
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["plugin", "deploy", "/no/such.wasm"], &url)?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /no/such.wasm"));
    let out = run(
        &["plugin", "deploy", file_arg(&component), "--set", "novalue"],
        &url,
    )?;
    assert_eq!(out.status.code(), Some(2));

    // Removed once nothing uses it.
    let out = run(&["sub", "rm", "tagged"], &url)?;
    ensure!(out.status.success());
    let removed = stdout_json(&run(&["plugin", "rm", "pyre"], &url)?)?;
    assert_eq!(removed["outcome"], "removed", "{removed}");
    Ok(())
}

fn file_arg(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}
