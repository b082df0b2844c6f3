//! Graceful shutdown with a deadline.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Cancels `shutdown` on SIGINT or SIGTERM so that every role finishes its in-flight work; a
/// second signal exits at once, and so does passing `deadline` (the unfinished work is
/// redelivered to the next owner).
pub fn watch_signals(shutdown: CancellationToken, deadline: Duration) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot install signal handlers");
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        info!(
            deadline_secs = deadline.as_secs(),
            "shutdown requested: finishing in-flight work (signal again to exit at once)"
        );
        shutdown.cancel();
        tokio::select! {
            _ = term.recv() => warn!("second signal: exiting at once"),
            _ = int.recv() => warn!("second signal: exiting at once"),
            _ = tokio::time::sleep(deadline) => {
                error!("shutdown deadline passed: exiting before in-flight work finished (it will be redelivered)");
                std::process::exit(1);
            }
        }
        std::process::exit(130);
    });
}
