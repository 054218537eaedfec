//! A group of `signalbox serve` processes on the bench's NATS cluster, at
//! default `[cluster]` settings (64 partitions, 3 replicas, `lease_ttl` 3 s,
//! `snapshot_every` 1 m): what `group_load` starts, kills, restarts and
//! meters.
//!
//! Each router `r<i>` has its config, data and log under the group's temp
//! directory, and HTTP on a port of its own (for `cluster.status`).
//! Invariants: [`Group::stable`] returns only when every partition is owned
//! by the member rendezvous hashing wishes among the running routers (so no
//! handover is still under way when a measurement starts); dropping the
//! group kills every router; [`Group::remove`] also deletes the group's
//! streams and buckets from the cluster, so an idle group left behind never
//! costs the next row anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream;
use futures::StreamExt;
use serde_json::Value;
use signalbox_router::group::assign::desired_owner;

use super::serve::Serve;

/// Partitions of a group at default settings.
pub const PARTITIONS: u32 = 64;

/// N routers of one group.
pub struct Group {
    /// The group's name.
    pub name: String,
    routers: Vec<Serve>,
    running: Vec<bool>,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Group {
    /// Starts `n` routers of group `name` on `urls`, loading the
    /// subscription files `subscriptions` (file name, YAML), with `ingest`
    /// (`jetstream` or `core`); returns once [`Group::stable`].
    pub async fn start(
        bin: &Path,
        urls: &[String],
        name: &str,
        n: usize,
        ingest: &str,
        subscriptions: &[(String, String)],
    ) -> Result<Group> {
        let dir = tempfile::tempdir().context("temp dir for the group")?;
        let subs = dir.path().join("subscriptions");
        std::fs::create_dir_all(&subs)?;
        for (file, yaml) in subscriptions {
            std::fs::write(subs.join(file), yaml)?;
        }
        let mut routers = Vec::with_capacity(n);
        for i in 0..n {
            let home = dir.path().join(format!("r{i}"));
            let config = format!(
                "data_dir = {data:?}\nsubscriptions = [{subs:?}]\ningest = {ingest:?}\n\n[nats]\nurls = {urls:?}\n\n[cluster]\ngroup = {name:?}\nmember = \"r{i}\"\n",
                data = home.join("data").display().to_string(),
                subs = subs.display().to_string(),
            );
            routers.push(Serve::start(bin, &home, &config)?);
        }
        let mut group = Group {
            name: name.to_string(),
            running: vec![true; n],
            routers,
            bin: bin.to_path_buf(),
            dir,
        };
        for r in &mut group.routers {
            r.ready(Duration::from_secs(60)).await?;
        }
        group.stable(Duration::from_secs(120)).await?;
        Ok(group)
    }

    /// The member name of router `i`.
    pub fn member(i: usize) -> String {
        format!("r{i}")
    }

    /// The process ids of the running routers.
    pub fn pids(&self) -> Vec<u32> {
        self.routers.iter().filter_map(Serve::pid).collect()
    }

    /// The index of the first running router.
    fn any_running(&self) -> Option<usize> {
        self.running.iter().position(|r| *r)
    }

    /// `cluster.status` as a running router answers it.
    pub async fn status(&self) -> Result<Value> {
        let i = self.any_running().context("no router runs")?;
        self.routers[i].admin("cluster.status", "").await
    }

    /// Each partition's owner as `status` reports it (`None`: unowned).
    pub fn owners(status: &Value) -> BTreeMap<u32, Option<String>> {
        status["partitions"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let n = u32::try_from(p["partition"].as_u64()?).ok()?;
                        Some((n, p["owner"].as_str().map(str::to_string)))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until every partition is owned by the member rendezvous hashing
    /// wishes among the running routers; the owners then.
    pub async fn stable(&self, within: Duration) -> Result<BTreeMap<u32, Option<String>>> {
        let members: Vec<String> = (0..self.routers.len())
            .filter(|i| self.running[*i])
            .map(Group::member)
            .collect();
        let deadline = Instant::now() + within;
        let mut last;
        loop {
            match self.status().await {
                Ok(s) => {
                    let owners = Group::owners(&s);
                    let off: Vec<u32> = (0..PARTITIONS)
                        .filter(|p| {
                            owners.get(p).cloned().flatten().as_deref()
                                != desired_owner(*p, &members)
                        })
                        .collect();
                    if off.is_empty() && owners.len() == PARTITIONS as usize {
                        return Ok(owners);
                    }
                    last = format!("partitions not yet with their wished owner: {off:?}");
                }
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() > deadline {
                bail!(
                    "group {} not stable within {within:?} ({last}); logs:\n{}",
                    self.name,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILLs router `i`.
    pub fn kill(&mut self, i: usize) {
        self.routers[i].kill();
        self.running[i] = false;
    }

    /// Starts router `i` again on its config and data.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.routers[i].restart(&self.bin)?;
        self.routers[i].ready(Duration::from_secs(60)).await?;
        self.running[i] = true;
        Ok(())
    }

    /// The routers' last log lines, for failure messages.
    pub fn logs(&self) -> String {
        self.routers
            .iter()
            .enumerate()
            .map(|(i, r)| format!("--- r{i} ---\n{}", r.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Kills every router and deletes the group's streams and buckets.
    pub async fn remove(mut self, js: &jetstream::Context) -> Result<()> {
        for i in 0..self.routers.len() {
            self.kill(i);
        }
        let marker = format!("SBX_{}_", self.name.to_ascii_uppercase().replace('-', "_"));
        let names: Vec<String> = js
            .stream_names()
            .filter_map(|n| async move { n.ok() })
            .collect()
            .await;
        for stream in names.iter().filter(|n| n.contains(&marker)) {
            js.delete_stream(stream)
                .await
                .with_context(|| format!("deleting {stream}"))?;
        }
        drop(self.dir);
        Ok(())
    }
}
