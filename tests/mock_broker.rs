//! `cordon-mock-broker`: librdkafka's mock cluster (in memory, one broker) as a process of its
//! own, for benchmarks that ask what Cordon costs when the broker is not the bottleneck — the
//! local tansu broker is the ceiling of every end-to-end run on these machines
//! (docs/benchmarks.md). Never for correctness tests: it keeps nothing, compacts nothing and
//! answers no admin requests (topics are created here, and on first use with 4 partitions).
//!
//! `cordon-mock-broker [TOPIC...]` creates each topic with `CORDON_MOCK_PARTITIONS` (4)
//! partitions, prints the bootstrap address on its first line and serves until killed.

use std::io::Write;

use rdkafka::mocking::MockCluster;

fn main() -> anyhow::Result<()> {
    let partitions: i32 = std::env::var("CORDON_MOCK_PARTITIONS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4);
    let cluster = MockCluster::new(1)?;
    for topic in std::env::args().skip(1) {
        cluster.create_topic(&topic, partitions, 1)?;
    }
    let mut out = std::io::stdout();
    writeln!(out, "{}", cluster.bootstrap_servers())?;
    out.flush()?;
    loop {
        std::thread::park();
    }
}
