//! [`GroupCase`]: a group of routers as a user runs it — a [`NatsCluster`]
//! of three nodes and N `signalbox serve` processes with a `[cluster]` table
//! (one group, each router a member name of its own, HTTP on a port of its
//! own) — and what the group cases do to them: SIGKILL and restart a router,
//! SIGSTOP and SIGCONT one past its lease, add one, stop one cleanly.
//!
//! Invariants: every router's config, data and log live in the case's temp
//! directory (`r<i>/`), which outlives its processes; [`GroupCase::start`]
//! and [`GroupCase::settle`] return only when every partition has an owner
//! answering for it; dropping the case kills every router and node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{KillOnDrop, NatsCluster, free_port, router_log_tail, send_signal, start_serve};

/// How long a group may take to have every partition owned.
const SETTLE: Duration = Duration::from_secs(90);

/// One router of the case.
pub struct GroupRouter {
    /// Its member name (`r<i>`).
    pub member: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its HTTP listener.
    pub http: std::net::SocketAddr,
    process: Option<KillOnDrop>,
}

impl GroupRouter {
    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.id())
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        router_log_tail(&self.config)
    }

    /// Its whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_file_name("router.log")).unwrap_or_default()
    }
}

/// A NATS cluster and a group of `signalbox serve` processes on it.
pub struct GroupCase {
    /// The cluster (kill and restart its nodes through it).
    pub cluster: NatsCluster,
    /// The routers, in the order they were added.
    pub routers: Vec<GroupRouter>,
    bin: PathBuf,
    group: String,
    partitions: u32,
    extra: String,
    cluster_extra: String,
    subscriptions: PathBuf,
    dir: tempfile::TempDir,
}

impl GroupCase {
    /// Starts a cluster and `n` routers of group `group` with `partitions`
    /// partitions, loading the subscription files `subscriptions` (file
    /// name, YAML); `extra` is more top-level TOML for every router (e.g.
    /// `ingest = "jetstream"`). Returns once every partition is owned.
    pub async fn start(
        bin: &Path,
        n: usize,
        group: &str,
        partitions: u32,
        subscriptions: &[(&str, &str)],
        extra: &str,
    ) -> Result<GroupCase> {
        Self::start_tuned(bin, n, group, partitions, subscriptions, extra, "").await
    }

    /// [`GroupCase::start`] with `cluster_extra`, more keys of every
    /// router's `[cluster]` table (e.g. `snapshot_orphan_age = "2s"`).
    pub async fn start_tuned(
        bin: &Path,
        n: usize,
        group: &str,
        partitions: u32,
        subscriptions: &[(&str, &str)],
        extra: &str,
        cluster_extra: &str,
    ) -> Result<GroupCase> {
        let cluster = NatsCluster::start().await?;
        let dir = tempfile::tempdir().context("temp dir for the group")?;
        let subs = dir.path().join("subscriptions");
        std::fs::create_dir_all(&subs)?;
        for (name, yaml) in subscriptions {
            std::fs::write(subs.join(name), yaml)?;
        }
        let mut case = GroupCase {
            cluster,
            routers: Vec::new(),
            bin: bin.to_path_buf(),
            group: group.to_string(),
            partitions,
            extra: extra.to_string(),
            cluster_extra: cluster_extra.to_string(),
            subscriptions: subs,
            dir,
        };
        for _ in 0..n {
            case.add_router()?;
        }
        case.settle().await?;
        Ok(case)
    }

    /// The config text of router `member` with HTTP on `http`.
    fn config_text(&self, member: &str, http: u16, partitions: u32, group: &str) -> String {
        format!(
            "data_dir = {data:?}\nsubscriptions = [{subs:?}]\n{extra}\n[nats]\nurls = {urls:?}\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n[cluster]\ngroup = {group:?}\npartitions = {partitions}\nreplicas = 3\nmember = {member:?}\nlease_ttl = \"3s\"\nsnapshot_every = \"5s\"\n{cluster_extra}\n",
            data = self
                .dir
                .path()
                .join(member)
                .join("data")
                .display()
                .to_string(),
            subs = self.subscriptions.display().to_string(),
            extra = self.extra,
            cluster_extra = self.cluster_extra,
            urls = self.cluster.urls(),
        )
    }

    /// Adds and starts a router (`r<i>`); its index.
    pub fn add_router(&mut self) -> Result<usize> {
        let i = self.routers.len();
        let member = format!("r{i}");
        let home = self.dir.path().join(&member);
        std::fs::create_dir_all(&home)?;
        let http = free_port()?;
        let config = home.join("signalbox.toml");
        std::fs::write(
            &config,
            self.config_text(&member, http, self.partitions, &self.group),
        )?;
        let process = start_serve(&self.bin, &config)?;
        self.routers.push(GroupRouter {
            member,
            config,
            http: std::net::SocketAddr::from(([127, 0, 0, 1], http)),
            process: Some(process),
        });
        Ok(i)
    }

    /// Writes the config of a router that is not started, with other
    /// settings than the group's (`partitions`, `group`): for the cases that
    /// check a router refuses to join. Returns the config file.
    pub fn stray_config(&self, name: &str, partitions: u32, group: &str) -> Result<PathBuf> {
        let home = self.dir.path().join(name);
        std::fs::create_dir_all(&home)?;
        let config = home.join("signalbox.toml");
        std::fs::write(
            &config,
            self.config_text(name, free_port()?, partitions, group),
        )?;
        Ok(config)
    }

    /// The `signalbox` binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// SIGKILLs router `i` (a crash).
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut p) = self.routers[i].process.take() {
            p.kill().context("SIGKILL signalbox serve")?;
            p.wait()?;
        }
        Ok(())
    }

    /// Starts router `i` again on its config and data.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.routers[i].process.is_none() {
            self.routers[i].process = Some(start_serve(&self.bin, &self.routers[i].config)?);
        }
        Ok(())
    }

    /// Stops router `i` cleanly (SIGTERM; it hands its partitions over) and
    /// waits for it to exit.
    pub fn stop(&mut self, i: usize) -> Result<()> {
        if let Some(mut p) = self.routers[i].process.take() {
            send_signal(p.id(), "TERM")?;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while p.try_wait()?.is_none() {
                if std::time::Instant::now() > deadline {
                    p.kill()?;
                    bail!("router {i} did not stop within 30 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// SIGSTOPs router `i` (a pause: it keeps its sockets, does nothing).
    pub fn pause(&self, i: usize) -> Result<()> {
        let pid = self.routers[i].pid().context("router not running")?;
        send_signal(pid, "STOP")
    }

    /// SIGCONTs router `i`.
    pub fn resume(&self, i: usize) -> Result<()> {
        let pid = self.routers[i].pid().context("router not running")?;
        send_signal(pid, "CONT")
    }

    /// Whether router `i` runs.
    pub fn running(&self, i: usize) -> bool {
        self.routers[i].process.is_some()
    }

    /// `cluster.status` as router `i` answers it over HTTP.
    pub async fn status(&self, i: usize) -> Result<Value> {
        self.admin(i, "cluster.status", "").await
    }

    /// An admin verb answered by router `i` over HTTP (`POST /v1/admin/<verb>`).
    pub async fn admin(&self, i: usize, verb: &str, body: &str) -> Result<Value> {
        let (status, text) = crate::http_request(
            self.routers[i].http,
            "POST",
            &format!("/v1/admin/{verb}"),
            &[],
            body,
        )
        .await
        .with_context(|| format!("{verb} on router {i}"))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{verb} on router {i}: {status} {text}"))?;
        Ok(v)
    }

    /// Waits until every partition has an owner answering for it, as a
    /// running router sees it; the status then.
    pub async fn settle(&self) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + SETTLE;
        let mut last = String::new();
        loop {
            for i in (0..self.routers.len()).filter(|i| self.running(*i)) {
                match self.status(i).await {
                    Ok(s)
                        if s["unowned"].as_array().is_some_and(Vec::is_empty)
                            && s["partitions"]
                                .as_array()
                                .is_some_and(|p| p.iter().all(|p| p["owner"].is_string())) =>
                    {
                        return Ok(s);
                    }
                    Ok(s) => last = format!("unowned {}", s["unowned"]),
                    Err(e) => last = format!("{e:#}"),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .routers
                    .iter()
                    .map(|r| format!("--- {} ---\n{}", r.member, r.log_tail()))
                    .collect();
                bail!(
                    "the group did not own every partition within {SETTLE:?} ({last}); logs:\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The logs of every router, for failure messages.
    pub fn logs(&self) -> String {
        self.routers
            .iter()
            .map(|r| format!("--- {} ---\n{}", r.member, r.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
