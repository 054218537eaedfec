//! [`RouterCase`]: what most end-to-end cases start from, in one call: the
//! log capture on, a NATS server, an in-process router with HTTP on a free
//! port (configured further by the case), and a client. The case then adds
//! its subscriptions and watches their firings with [`RouterCase::watch`].

use std::net::SocketAddr;

use anyhow::Result;
use signalbox_router::RouterConfig;

use crate::{TestNats, TestRouter, init_logs};

/// A NATS server, a router with HTTP on, and a client.
pub struct RouterCase {
    /// The server.
    pub nats: TestNats,
    /// The router (HTTP on `127.0.0.1`, a free port).
    pub router: TestRouter,
    /// A client of the server.
    pub client: async_nats::Client,
    /// The router's HTTP address.
    pub addr: SocketAddr,
}

impl RouterCase {
    /// Starts it all; `tweak` changes the router's test configuration
    /// (adapters, sources, limits …) before it starts.
    pub async fn start(tweak: impl FnOnce(&mut RouterConfig)) -> Result<RouterCase> {
        init_logs();
        let nats = TestNats::start()?;
        let router = TestRouter::start_configured(&nats, |c| {
            c.http.listen = Some("127.0.0.1:0".into());
            tweak(c);
        })
        .await?;
        let client = nats.client().await?;
        let addr = router.http_addr()?;
        Ok(RouterCase {
            nats,
            router,
            client,
            addr,
        })
    }

    /// Adds the subscription `doc`, whose firings go to `subject`, and
    /// subscribes to them.
    pub async fn watch(&self, doc: &str, subject: &str) -> Result<async_nats::Subscriber> {
        self.router.watch(&self.client, doc, subject).await
    }
}
