//! nats-server versions as numbers: what `nats-server --version` and a
//! server's INFO say (`2.15.1`, `v2.12.0-beta.3`), for picking the newest
//! binary and refusing a server too old for group mode.

/// Parses `2.15.1` (and `2.12.0-beta`) into numbers.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim_start_matches('v').split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}
