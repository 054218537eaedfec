//! CPU time per message, for the load tool: how much processor time
//! nats-server and this process (the router, the load generator and the
//! counting receiver) spend per message of one measurement.
//!
//! Read from `/proc/<pid>/stat` (user + system time, dead threads included),
//! so it is reported on Linux only; elsewhere the figures are absent, never
//! zero. The resolution is one clock tick (10 ms), well under a percent of a
//! measurement of a second or more on 2 cores. Unlike a rate, CPU per message
//! does not depend on what else ran on the machine at the same time, so it
//! compares builds and rows more steadily than signals/s does.
//!
//! [`pids_cpu`] sums the same figure over a set of processes (the routers of
//! a group, the nodes of a NATS cluster, a relay peer): `None` when any of
//! them cannot be read, so a sum never silently leaves a process out.

use std::time::Duration;

/// Ticks per second of the `utime` and `stime` fields of `/proc/<pid>/stat`:
/// `USER_HZ`, which Linux fixes at 100 in its user-space ABI.
const USER_HZ: u64 = 100;

/// User + system CPU time a process has used so far, or `None` when its
/// `/proc` entry cannot be read or parsed.
fn process_cpu(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces: count
    // the fields after its closing one (field 3, the state, is index 0).
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// User + system CPU time the processes `pids` have used so far, summed;
/// `None` when any of them cannot be read (gone, or not Linux).
pub fn pids_cpu(pids: &[u32]) -> Option<Duration> {
    pids.iter()
        .map(|p| process_cpu(&p.to_string()))
        .sum::<Option<Duration>>()
}

/// User + system CPU time the threads of process `pid` named `name` (as
/// `/proc/<pid>/task/<tid>/stat` gives it, at most 15 bytes) have used so
/// far, summed; `None` when no such thread could be read.
pub fn thread_cpu(pid: u32, name: &str) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = None;
    for task in tasks.flatten() {
        let tid = task.file_name();
        let Some(tid) = tid.to_str() else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"));
        if comm.is_ok_and(|c| c.trim_end() == name)
            && let Some(cpu) = process_cpu(&format!("{pid}/task/{tid}"))
        {
            total = Some(total.unwrap_or(Duration::ZERO) + cpu);
        }
    }
    total
}

/// User + system CPU time this process has used so far.
pub fn self_cpu() -> Option<Duration> {
    process_cpu("self")
}

/// CPU time used over one measurement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// By the nats-server process.
    pub nats: Option<Duration>,
    /// By this process: the router (when in the run), the load generator and
    /// the receiver that counts firings.
    pub own: Option<Duration>,
}

impl Cpu {
    /// The CPU per message, for `n` messages.
    pub fn per_message(self, n: usize) -> PerMessage {
        let per = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e6 / n.max(1) as f64);
        PerMessage {
            nats: per(self.nats),
            own: per(self.own),
        }
    }
}

/// CPU microseconds per message of one measurement.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerMessage {
    /// Of nats-server.
    pub nats: Option<f64>,
    /// Of this process.
    pub own: Option<f64>,
}

impl PerMessage {
    /// The medians of several measurements, field by field.
    pub fn median(runs: &[PerMessage]) -> PerMessage {
        PerMessage {
            nats: median_us(runs.iter().map(|r| r.nats)),
            own: median_us(runs.iter().map(|r| r.own)),
        }
    }
}

/// Started before a measurement, read after it.
pub struct CpuMeter {
    nats_pid: Option<String>,
    nats: Option<Duration>,
    own: Option<Duration>,
}

impl CpuMeter {
    /// Notes the CPU time nats-server (`nats_pid`) and this process used so far.
    pub fn start(nats_pid: Option<u32>) -> CpuMeter {
        let nats_pid = nats_pid.map(|p| p.to_string());
        CpuMeter {
            nats: nats_pid.as_deref().and_then(process_cpu),
            own: process_cpu("self"),
            nats_pid,
        }
    }

    /// The CPU time used since [`CpuMeter::start`].
    pub fn stop(&self) -> Cpu {
        let since =
            |before: Option<Duration>, now: Option<Duration>| Some(now?.saturating_sub(before?));
        Cpu {
            nats: since(self.nats, self.nats_pid.as_deref().and_then(process_cpu)),
            own: since(self.own, process_cpu("self")),
        }
    }
}

/// Formats microseconds per message, or `-` when not measured.
pub fn fmt_us(us: Option<f64>) -> String {
    us.map_or_else(|| "-".to_string(), |us| format!("{us:.1}"))
}

/// The median of the measured values, if any was measured.
fn median_us(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| super::median(&v))
}
