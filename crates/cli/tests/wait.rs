//! `signalbox wait` as a workflow step would use it, against a real router
//! process: it blocks until satisfied (exit 0) even across a SIGKILL and restart
//! of the router, re-attaches by id, and exits 3 on timeout.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use signalbox_testkit::{KillOnDrop, TestNats, init_logs, publish_signal};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_signalbox"))
}

fn serve(config: &Path) -> Result<KillOnDrop> {
    bin()
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .context("starting signalbox serve")
}

fn wait_for_exit(child: &mut Child, within: Duration) -> Result<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if start.elapsed() > within {
            let _ = child.kill();
            bail!("process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn router_ready(client: &async_nats::Client) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = tokio::time::timeout(
            Duration::from_secs(1),
            client.request("signalbox.admin.sub.ls", "".into()),
        )
        .await;
        if matches!(r, Ok(Ok(_))) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "router never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_survives_a_router_sigkill_and_exits_by_its_answer() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let client = nats.client().await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("signalbox.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[nats]\nurls = [{:?}]\n",
            dir.path().join("data").display().to_string(),
            nats.url()
        ),
    )?;
    let mut router = serve(&config)?;
    router_ready(&client).await?;

    let mut waiter = bin()
        .args([
            "wait",
            "--id",
            "etl/9/train",
            "--signal",
            "table_updated",
            "--where",
            r#"{"table": ["prod.events"]}"#,
            "--timeout",
            "60s",
            "--consumer",
            "step=train",
        ])
        .env("SIGNALBOX_NATS_URL", nats.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    // Let the wait register, then kill the router hard and bring it back.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client
            .request("signalbox.admin.wait.show", "etl/9/train".into())
            .await?;
        let v: Value = serde_json::from_slice(&r.payload)?;
        if v.get("wait").is_some() {
            break;
        }
        ensure!(Instant::now() < deadline, "the wait never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    router.kill()?;
    router.wait()?;
    // Down for longer than the waiter's 5 s poll: it asks while no router
    // answers, and must go on waiting.
    tokio::time::sleep(Duration::from_secs(6)).await;
    ensure!(
        waiter.try_wait()?.is_none(),
        "the waiter gave up while the router was down"
    );
    let mut router = serve(&config)?;
    router_ready(&client).await?;
    ensure!(
        waiter.try_wait()?.is_none(),
        "the waiter must still be waiting"
    );

    publish_signal(
        &client,
        "table_updated",
        r#"{"id": "load-9", "params": {"table": "prod.events"}}"#,
    )
    .await?;
    let status = wait_for_exit(&mut waiter, Duration::from_secs(30))?;
    assert_eq!(status.code(), Some(0), "satisfied exits 0");
    let out = waiter.wait_with_output()?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["wait"]["state"]["signals"][0]["id"], "load-9", "{v}");

    // Re-attaching with the same id answers at once with the same signals.
    let again = bin()
        .args(["wait", "--id", "etl/9/train", "--signal", "table_updated"])
        .env("SIGNALBOX_NATS_URL", nats.url())
        .output()?;
    assert_eq!(again.status.code(), Some(0));
    let v2: Value = serde_json::from_slice(&again.stdout)?;
    assert_eq!(v2["wait"], v["wait"]);

    // A wait that times out exits 3.
    let timed = bin()
        .args([
            "wait",
            "--id",
            "never",
            "--signal",
            "nothing",
            "--timeout",
            "500ms",
        ])
        .env("SIGNALBOX_NATS_URL", nats.url())
        .output()?;
    assert_eq!(timed.status.code(), Some(3), "{timed:?}");
    router.kill()?;
    router.wait()?;
    Ok(())
}
