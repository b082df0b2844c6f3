//! A TCP proxy that can cut a dependency off and bring it back.

use anyhow::Result;

use crate::free_port;

/// A TCP proxy on a free loopback port in front of a service, that a test can cut (`down`:
/// refuse new connections and drop open ones) and restore (`up`), to simulate an outage of, say,
/// PostgreSQL without stopping the machine's server.
pub struct OutageProxy {
    /// The address clients connect to.
    pub addr: String,
    target: String,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl OutageProxy {
    /// Starts forwarding a free port to `target`.
    pub async fn start(target: &str) -> Result<OutageProxy> {
        let proxy = OutageProxy {
            addr: format!("127.0.0.1:{}", free_port()),
            target: target.to_string(),
            tasks: Default::default(),
        };
        proxy.up().await?;
        Ok(proxy)
    }

    /// Accepts and forwards connections again.
    pub async fn up(&self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.addr).await?;
        let target = self.target.clone();
        let tasks = std::sync::Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                if let Ok(mut t) = tasks.lock() {
                    t.push(conn.abort_handle());
                }
            }
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(accept.abort_handle());
        }
        Ok(())
    }

    /// Stops accepting and drops every open connection.
    pub fn down(&self) {
        if let Ok(mut t) = self.tasks.lock() {
            for task in t.drain(..) {
                task.abort();
            }
        }
    }
}

impl Drop for OutageProxy {
    fn drop(&mut self) {
        self.down();
    }
}
