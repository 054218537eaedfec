//! [`NatsCluster`]: three `nats-server` processes routed into one cluster on
//! loopback, JetStream on, each with its own store directory under one temp
//! directory, for replicated (R3) streams and the failures a group of
//! routers must survive.
//!
//! Each node `i` (0, 1, 2) is named `n<i>` (the `server_name` that stream
//! and meta-leader reports use; [`NatsCluster::index_of`] maps it back), and
//! has three ports picked once: clients, cluster routes and HTTP monitoring.
//! Invariants: a node keeps its ports, config and store across
//! [`NatsCluster::kill`] / [`NatsCluster::stop`] and [`NatsCluster::restart`];
//! [`NatsCluster::start`] and [`NatsCluster::restart`] return only when every
//! running node answers its health check and reports the same JetStream meta
//! leader; dropping the cluster kills every node and removes the directory.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use super::server::{self, NatsServer};

/// How long the cluster may take to be healthy with a meta leader.
const SETTLE: Duration = Duration::from_secs(60);

/// One node: its process and its monitoring port.
struct Node {
    name: String,
    server: NatsServer,
    monitor_port: u16,
}

/// A 3-node nats-server cluster with JetStream on free loopback ports.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// The number of nodes.
    pub const SIZE: usize = 3;

    /// Starts the three nodes and waits until the cluster has a JetStream
    /// meta leader that every node knows.
    pub async fn start() -> Result<NatsCluster> {
        let dir = tempfile::tempdir().context("temp dir for the cluster")?;
        let ports = server::free_ports(3 * Self::SIZE)?;
        let (client, rest) = ports.split_at(Self::SIZE);
        let (route, monitor) = rest.split_at(Self::SIZE);
        let routes: Vec<String> = route
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect();
        let mut nodes = Vec::with_capacity(Self::SIZE);
        for i in 0..Self::SIZE {
            let name = format!("n{i}");
            let config = format!(
                "server_name: {name}\n{base}http: \"127.0.0.1:{monitor}\"\ncluster {{\n  name: signalbox-test\n  listen: \"127.0.0.1:{route}\"\n  routes: [{routes}]\n}}\n",
                base = server::base_config(client[i], &dir.path().join(&name)),
                monitor = monitor[i],
                route = route[i],
                routes = routes.join(", "),
            );
            let config_file = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config_file, config).context("writing a node's config")?;
            nodes.push(Node {
                name,
                server: NatsServer::new(config_file, client[i]),
                monitor_port: monitor[i],
            });
        }
        let mut cluster = NatsCluster { nodes, _dir: dir };
        for node in &mut cluster.nodes {
            node.server
                .start()
                .with_context(|| format!("starting node {}", node.name))?;
        }
        cluster.settle().await?;
        Ok(cluster)
    }

    /// The client URL of each node, in node order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.server.url()).collect()
    }

    /// The client URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        self.nodes[i].server.url()
    }

    /// The server name of node `i` (`n<i>`).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The node whose server name is `name` (as a stream's or the meta
    /// group's `leader` reports it).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].server.pid()
    }

    /// A client that knows every node's URL (and so reconnects to another
    /// node when its own goes away).
    pub async fn client(&self) -> Result<async_nats::Client> {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(self.urls())
            .await
            .context("connecting to the cluster")
    }

    /// SIGKILLs node `i` (a crash: nothing flushed, no goodbye to its peers).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].server.kill();
    }

    /// Stops node `i` gracefully (SIGTERM, waits for the exit).
    pub fn stop(&mut self, i: usize) -> Result<()> {
        self.nodes[i].server.terminate()
    }

    /// Starts node `i` again on its ports and store (after [`kill`] or
    /// [`stop`]; a running node is left as it is), then waits until the
    /// cluster is healthy with a meta leader again.
    ///
    /// [`kill`]: NatsCluster::kill
    /// [`stop`]: NatsCluster::stop
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        node.server
            .start()
            .with_context(|| format!("restarting node {}", node.name))?;
        self.settle().await.map(|_| ())
    }

    /// Starts node `i` again on its ports and store without waiting for the
    /// cluster (a node alone has no quorum: start them all, then
    /// [`meta_leader`]).
    ///
    /// [`meta_leader`]: NatsCluster::meta_leader
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        node.server
            .start()
            .with_context(|| format!("starting node {}", node.name))
    }

    /// The name of the JetStream meta leader, as the running nodes agree on
    /// it, waiting (bounded) until there is one.
    pub async fn meta_leader(&self) -> Result<String> {
        self.settle().await
    }

    /// Waits until every running node answers `/healthz` with 200 and they
    /// all name the same meta leader in `/jsz`; returns its name.
    async fn settle(&self) -> Result<String> {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let seen = self.leaders_seen().await;
            let last = match &seen {
                Ok(leaders) => match leaders.split_first() {
                    Some((first, rest)) if !first.is_empty() && rest.iter().all(|l| l == first) => {
                        return Ok(first.clone());
                    }
                    _ => format!("meta leaders seen by the running nodes: {leaders:?}"),
                },
                Err(e) => format!("{e:#}"),
            };
            if tokio::time::Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- {} ---\n{}", n.name, n.server.log_tail()))
                    .collect();
                bail!(
                    "the cluster had no agreed JetStream meta leader within {SETTLE:?} ({last}); logs:\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The meta leader each running node reports ("" for none yet); an error
    /// when a running node is not healthy.
    async fn leaders_seen(&self) -> Result<Vec<String>> {
        let mut leaders = Vec::new();
        for node in self.nodes.iter().filter(|n| n.server.is_running()) {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], node.monitor_port));
            let (status, body) = crate::http_request(addr, "GET", "/healthz", &[], "").await?;
            ensure!(status == 200, "{} /healthz: {status} {body}", node.name);
            let (status, body) = crate::http_request(addr, "GET", "/jsz", &[], "").await?;
            ensure!(status == 200, "{} /jsz: {status} {body}", node.name);
            let jsz: serde_json::Value = serde_json::from_str(&body)
                .with_context(|| format!("{} /jsz: {body}", node.name))?;
            leaders.push(
                jsz["meta_cluster"]["leader"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        Ok(leaders)
    }
}
