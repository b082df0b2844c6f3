//! Test harness for Cordon's tests against real components: a throw-away PostgreSQL database, a
//! real Kafka-protocol broker process (tansu with its durable SQLite engine), and `cordon`
//! processes started, killed and restarted like in production.
//!
//! Environment:
//! - `CORDON_TEST_PG_URL`: an admin connection used to create and drop test databases
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! - `CORDON_TANSU`: the broker binary (default `tansu` on `PATH`).
//! - `CORDON_BIN`: the `cordon` binary (default: next to the test executable's directory).
//! - `ORT_DYLIB_PATH`: the ONNX Runtime library, passed on to `cordon`.
//! - `CORDON_PROMETHEUS`: the Prometheus server for the dashboard and alert tests (default
//!   `/usr/bin/prometheus`, Debian's package).
//! - `CORDON_CHROMEDRIVER`, `CORDON_CHROMIUM`: the browser for console tests (default
//!   `/usr/bin/chromedriver` and `/usr/bin/chromium`, Debian's packages).

mod broker;
mod browser;
mod deployment;
mod load;
mod metrics;
mod net;
mod outage;
mod postgres_tls;
mod process;
mod prometheus;
mod session;
mod tls;
mod transparency_double;

pub use broker::*;
pub use browser::*;
pub use deployment::*;
pub use load::*;
pub use metrics::*;
pub use net::*;
pub use outage::*;
pub use postgres_tls::*;
pub use process::*;
pub use prometheus::*;
pub use session::*;
pub use tls::*;
pub use transparency_double::*;

pub use cordon_review::test_support::{admin_url, TestDb};
