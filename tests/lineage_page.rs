//! The lineage page in a real browser: a router with real data (a producer's
//! signals, a subscription, a firing delivered to its target, a signal that did
//! not match), the page loaded in headless Chromium (Debian's `chromium`,
//! installed by `scripts/setup.sh --test`), and the nodes, edges and explain
//! verdicts checked in the DOM it rendered. A screenshot is kept as a test
//! artefact at `target/test-artifacts/lineage-page.png`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use signalbox_testkit::{
    TestNats, TestRouter, WAIT, http_request, init_logs, next_message, publish_signal,
};

const TOKEN: &str = "page-token";

const BIG_TABLES: &str = r#"
id: big-tables
signal: table_updated
where: {rows: [{numeric: [">", 100]}]}
action: {trigger: {subject: runs.big}}
"#;

/// The Chromium binary, or a failure that says how to install it.
fn chromium() -> Result<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("chromium"))
        .chain([PathBuf::from("/usr/bin/chromium")]);
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "chromium is not installed: run scripts/setup.sh --test (it installs Debian's chromium package)"
    )
}

/// Runs headless Chromium on `url` with a fresh profile; `extra` picks the output
/// (`--dump-dom`, `--screenshot=…`). Returns stdout.
async fn run_chromium(url: &str, extra: &[String]) -> Result<String> {
    let profile = tempfile::tempdir()?;
    let mut cmd = tokio::process::Command::new(chromium()?);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .context("chromium did not finish within 90 s")?
        .context("running chromium")?;
    ensure!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The DOM of `url` after its scripts ran.
async fn dump_dom(url: &str) -> Result<String> {
    run_chromium(url, &["--dump-dom".to_string()]).await
}

/// Every value of attribute `name` in serialized HTML, entities decoded.
fn attribute_values(dom: &str, name: &str) -> BTreeSet<String> {
    let needle = format!(" {name}=\"");
    let mut out = BTreeSet::new();
    let mut rest = dom;
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        let Some(end) = rest.find('"') else { break };
        out.insert(
            rest[..end]
                .replace("&gt;", ">")
                .replace("&lt;", "<")
                .replace("&quot;", "\"")
                .replace("&amp;", "&"),
        );
        rest = &rest[end..];
    }
    out
}

/// The text of the element whose opening tag carries `attribute`, tags removed.
fn element_text(dom: &str, attribute: &str) -> Option<String> {
    let start = dom.find(attribute)?;
    let open_end = start + dom[start..].find('>')? + 1;
    let close = open_end + dom[open_end..].find("</li>")?;
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[open_end..close].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some(text)
}

fn assert_has(set: &BTreeSet<String>, want: &[&str], what: &str, dom: &str) {
    for w in want {
        assert!(
            set.contains(*w),
            "{what} {w:?} missing; found {set:?}\n--- DOM ---\n{dom}"
        );
    }
}

/// `target/test-artifacts`, next to the test binary's profile directory.
fn artifacts_dir() -> Result<PathBuf> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()?
            .ancestors()
            .nth(3)
            .context("test binary outside target/<profile>/deps")?
            .to_path_buf(),
    };
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn png_size(path: &Path) -> Result<(u32, u32, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 24,
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Ok((be(16), be(20), bytes.len() as u64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_page_draws_the_graph_in_headless_chromium() -> Result<()> {
    init_logs();
    chromium()?;
    let nats = TestNats::start()?;
    let router = TestRouter::start_configured(&nats, |config| {
        config.http.listen = Some("127.0.0.1:0".into());
        config.http.token = Some(TOKEN.into());
    })
    .await?;
    let addr = router.router().http_addr().context("HTTP is on")?;
    let client = nats.client().await?;
    router.add_subscription(&client, BIG_TABLES).await?;
    let mut runs = client.subscribe("runs.big").await?;
    client.flush().await?;

    let producer = json!({"workflow": "etl", "run": "42", "step": "load"});
    for (id, rows) in [("load-1", 500), ("load-2", 5)] {
        let body = json!({"id": id, "params": {"table": "prod.events", "rows": rows}, "producer": producer});
        publish_signal(&client, "table_updated", &body.to_string()).await?;
    }
    let fired: Value = serde_json::from_slice(&next_message(&mut runs, WAIT).await?.payload)?;
    let firing = fired["firing_id"]
        .as_str()
        .context("firing id in the firing")?
        .to_string();

    // The page is static and needs no token; its data does.
    let (status, body) = http_request(addr, "GET", "/lineage", &[], "").await?;
    assert_eq!(status, 200);
    assert!(body.contains("lineage/lineage.js"), "{body}");
    let (status, _) = http_request(addr, "GET", "/lineage/lineage.js", &[], "").await?;
    assert_eq!(status, 200);
    let (status, _) = http_request(
        addr,
        "GET",
        "/v1/signals/search?name=table_updated",
        &[],
        "",
    )
    .await?;
    assert_eq!(status, 401);

    let base = format!("http://{addr}/lineage");
    let signal = "signal:table_updated:1";
    let sub = "subscription:big-tables";
    let fire = format!("firing:{firing}");
    let producer_node = "producer:etl/42/load";
    let target = "target:runs.big";

    // Around the signal that fired: producer → signal → subscription → firing → target.
    let dom = dump_dom(&format!("{base}?signal=table_updated:1#token={TOKEN}")).await?;
    let nodes = attribute_values(&dom, "data-node-id");
    assert_has(
        &nodes,
        &[producer_node, signal, sub, &fire, target],
        "node",
        &dom,
    );
    let edges = attribute_values(&dom, "data-edge");
    let want_edges = [
        format!("{producer_node}->{signal}"),
        format!("{signal}->{sub}"),
        format!("{signal}->{fire}"),
        format!("{sub}->{fire}"),
        format!("{fire}->{target}"),
    ];
    let want: Vec<&str> = want_edges.iter().map(String::as_str).collect();
    assert_has(&edges, &want, "edge", &dom);
    assert!(
        dom.contains(&format!("data-node-id=\"{signal}\" data-kind=\"signal\"")),
        "{dom}"
    );
    let verdict = element_text(&dom, "data-verdict=\"big-tables|table_updated:1\"")
        .context("no verdict for table_updated:1")?;
    assert!(verdict.contains("fed firing"), "{verdict}");
    assert!(
        !dom.contains(TOKEN),
        "the token is taken out of the address and never rendered"
    );

    // Search by name and params: only load-2 has rows=5; it becomes the focus,
    // drawn with a dashed no-match edge and the explain verdict naming `rows`.
    let dom = dump_dom(&format!(
        "{base}?name=table_updated&params=rows%3D5#token={TOKEN}"
    ))
    .await?;
    let results = attribute_values(&dom, "data-signal");
    assert_eq!(
        results,
        BTreeSet::from(["table_updated:2".to_string()]),
        "{dom}"
    );
    let edges = attribute_values(&dom, "data-edge");
    assert_has(
        &edges,
        &["signal:table_updated:2->subscription:big-tables"],
        "edge",
        &dom,
    );
    assert!(
        dom.contains("data-edge=\"signal:table_updated:2-&gt;subscription:big-tables\" data-kind=\"no_match\"")
            || dom.contains("data-edge=\"signal:table_updated:2->subscription:big-tables\" data-kind=\"no_match\""),
        "the miss is drawn as a no_match edge: {dom}"
    );
    let verdict = element_text(&dom, "data-verdict=\"big-tables|table_updated:2\"")
        .context("no verdict for table_updated:2")?;
    assert!(
        verdict.contains("does not match") && verdict.contains("rows"),
        "{verdict}"
    );
    assert!(dom.contains("data-matches=\"false\""), "{dom}");

    // Around the subscription: its firing, the signal that fed it, and the
    // recent signal that did not match.
    let sub_url = format!("{base}?sub=big-tables#token={TOKEN}");
    let dom = dump_dom(&sub_url).await?;
    let nodes = attribute_values(&dom, "data-node-id");
    assert_has(
        &nodes,
        &[
            producer_node,
            signal,
            "signal:table_updated:2",
            sub,
            &fire,
            target,
        ],
        "node",
        &dom,
    );
    let verdicts = attribute_values(&dom, "data-verdict");
    assert_has(
        &verdicts,
        &["big-tables|table_updated:1", "big-tables|table_updated:2"],
        "verdict",
        &dom,
    );

    // Around the firing.
    let dom = dump_dom(&format!("{base}?firing={firing}#token={TOKEN}")).await?;
    let edges = attribute_values(&dom, "data-edge");
    assert_has(&edges, &want, "edge", &dom);

    // Without the token the page says so and draws nothing.
    let dom = dump_dom(&format!("{base}?signal=table_updated:1")).await?;
    assert!(dom.contains("data-state=\"error\""), "{dom}");
    assert!(dom.contains("unauthorized"), "{dom}");
    assert!(attribute_values(&dom, "data-node-id").is_empty(), "{dom}");

    // The screenshot, kept as an artefact.
    let shot = artifacts_dir()?.join("lineage-page.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &sub_url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".to_string(),
        ],
    )
    .await?;
    let (width, height, bytes) = png_size(&shot)?;
    assert_eq!((width, height), (1280, 900), "{}", shot.display());
    assert!(
        bytes > 20_000,
        "a {bytes}-byte screenshot is too small to show the graph: {}",
        shot.display()
    );
    Ok(())
}
