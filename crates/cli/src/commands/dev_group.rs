//! `dev --group N`: a local group to watch. Starts N `nats-server` nodes
//! clustered on loopback (JetStream, each under the data dir) and N routers,
//! each a `signalbox serve` process of its own with a `[cluster]` table (group
//! `dev`), so that one can be killed and the others seen taking over its
//! partitions (`signalbox cluster status`). Ctrl-C stops the routers (they
//! hand their partitions over), then the servers.

use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};

use anyhow::{Context, Result};
use signalbox_router::embedded::{NatsProcess, free_port};

use super::serve::StopSignal;
use crate::cli::DevArgs;

/// Runs the local group until `stop`.
pub async fn run(args: &DevArgs, n: u32, stop: StopSignal) -> Result<ExitCode> {
    let dir = args.data_dir.join("group");
    let client_ports: Vec<u16> = (0..n)
        .map(|i| {
            let wanted = 4222 + i as u16;
            if i == 0 && args.port.is_some() {
                return Ok(args.port.unwrap_or(wanted));
            }
            if std::net::TcpListener::bind(("127.0.0.1", wanted)).is_ok() {
                Ok(wanted)
            } else {
                free_port()
            }
        })
        .collect::<std::io::Result<_>>()
        .context("no free port for nats-server")?;
    let route_ports: Vec<u16> = (0..n)
        .map(|_| free_port())
        .collect::<std::io::Result<_>>()
        .context("no free port for the cluster routes")?;
    let routes = route_ports
        .iter()
        .map(|p| format!("nats-route://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut servers = Vec::new();
    for i in 0..n as usize {
        let extra = format!(
            "server_name: n{i}\ncluster {{\n  name: signalbox-dev\n  listen: \"127.0.0.1:{}\"\n  routes: [{routes}]\n}}\n",
            route_ports[i]
        );
        servers.push(
            NatsProcess::start_with(
                &dir.join(format!("nats-{i}")),
                Some(client_ports[i]),
                &extra,
            )
            .with_context(|| format!("cannot start nats-server node {i}"))?,
        );
    }
    let urls: Vec<String> = servers.iter().map(NatsProcess::url).collect();
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let subscriptions = if args.subscriptions.is_empty() {
        let examples = Path::new("examples/subscriptions");
        if examples.is_dir() {
            vec![examples.to_path_buf()]
        } else {
            Vec::new()
        }
    } else {
        args.subscriptions.clone()
    };
    let mut routers: Vec<(String, String, Child)> = Vec::new();
    for i in 0..n as usize {
        let member = format!("router-{i}");
        let http = free_port().context("no free port for a router's HTTP listener")?;
        let config = dir.join(format!("{member}.toml"));
        let text = format!(
            "data_dir = {data:?}\nsubscriptions = {subs:?}\n\n[nats]\nurls = {urls:?}\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n[cluster]\ngroup = \"dev\"\nreplicas = {replicas}\nmember = {member:?}\n",
            data = dir.join(&member).display().to_string(),
            subs = subscriptions
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>(),
            replicas = n.min(3),
        );
        std::fs::write(&config, text).with_context(|| format!("{}", config.display()))?;
        let log = std::fs::File::create(dir.join(format!("{member}.log")))
            .context("cannot create a router log")?;
        let child = Command::new(&exe)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {member}"))?;
        routers.push((member, format!("http://127.0.0.1:{http}"), child));
    }
    let mut lines = vec![format!(
        "signalbox dev is running a group of {n}.\n\n  NATS cluster:  {}",
        urls.join(", ")
    )];
    for (member, http, child) in &routers {
        lines.push(format!(
            "  {member}:      pid {}, {http}/readyz, log {}",
            child.id(),
            dir.join(format!("{member}.log")).display()
        ));
    }
    lines.push(format!(
        "\nWatch a takeover (in another terminal):\n  signalbox cluster status --nats-url {url}\n  kill -9 {pid}        # router-0; its partitions move after their leases lapse\n  signalbox cluster status --nats-url {url}\n  signalbox publish table_updated --nats-url {url} --id demo-1 --param table=prod.events --param rows=1200000\n\nPress Ctrl-C to stop (the routers hand their partitions over, then the servers stop).",
        url = urls[0],
        pid = routers[0].2.id(),
    ));
    say(&lines.join("\n"));
    stop.wait().await;
    for (member, _, child) in &mut routers {
        terminate(child);
        let _ = child.wait();
        say(&format!("{member} stopped"));
    }
    drop(servers);
    say("signalbox dev stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Asks a router to stop (SIGTERM: it hands its partitions over), or kills
/// it when that cannot be sent.
fn terminate(child: &mut Child) {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .is_ok_and(|s| s.success());
    if !sent {
        let _ = child.kill();
    }
}

/// Prints a line to stdout, ignoring a closed pipe.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
