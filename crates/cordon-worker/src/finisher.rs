//! The in-order finisher: the ordering guarantee between a batch's effects and its offsets.
//!
//! The worker hands batches over to the producer one after the other and goes on scoring while
//! the broker acknowledges them; [`InOrder`] finishes them strictly in hand-over order. For each
//! batch it waits for the broker's acknowledgements, then lets the role complete the batch (queue
//! its review cases, store its offsets). So:
//!
//! - **no offset is stored before every earlier batch's effects are acknowledged**, whatever
//!   order the acknowledgements arrive in;
//! - **after a failed batch, it and every batch handed over after it are published again in
//!   order**, and nothing new is handed over meanwhile ([`InOrder::slot`] waits), so a partition
//!   of the compacted verdicts topic never ends on an older batch's verdict;
//! - **shutdown mid-flight** stops it at the first interrupted batch: that batch and the later
//!   ones store no offset and are re-delivered to the partitions' next owner.
//!
//! The role's I/O is behind [`Effects`], so the guarantee is tested here with a fake publisher.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, Mutex, MutexGuard};
use tokio::task::JoinHandle;
use tracing::warn;

/// The I/O of a role whose batches the finisher finishes.
pub trait Effects: Send + Sync + 'static {
    /// A batch handed over to the producer.
    type Batch: Send + 'static;
    /// What the broker's acknowledgements reported (the records it refused for good).
    type Published: Send + 'static;
    /// Why the acknowledgements failed: the batch must be published again.
    type Error: Display + Send + 'static;

    /// Publishes `batch` again and waits for its acknowledgements, retrying until they arrive;
    /// `None` when shutdown interrupted it.
    fn republish(
        &self,
        batch: Self::Batch,
    ) -> impl Future<Output = Option<(Self::Batch, Self::Published)>> + Send;

    /// Completes a published batch: its remaining effects, then its offsets. `Ok(false)` when
    /// shutdown interrupted it.
    fn complete(
        &self,
        batch: Self::Batch,
        published: Self::Published,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;
}

/// The broker's acknowledgements of a handed-over batch.
pub type Acks<E> =
    Pin<Box<dyn Future<Output = Result<<E as Effects>::Published, <E as Effects>::Error>> + Send>>;

struct InFlight<E: Effects> {
    batch: E::Batch,
    acks: Acks<E>,
}

/// Finishes handed-over batches in hand-over order (see the module docs).
pub struct InOrder<E: Effects> {
    tx: mpsc::Sender<InFlight<E>>,
    /// Held while a batch is handed over; the finisher holds it while it publishes again after
    /// a failure, so nothing is handed over in between.
    handing_over: Arc<Mutex<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The right to hand over the next batch: a place among the batches in flight, and the
/// hand-over lock.
pub struct Slot<'a, E: Effects> {
    permit: mpsc::Permit<'a, InFlight<E>>,
    _handing_over: MutexGuard<'a, ()>,
}

impl<E: Effects> Slot<'_, E> {
    /// Hands `batch` over with the acknowledgements of its records.
    pub fn hand_over(self, batch: E::Batch, acks: Acks<E>) {
        self.permit.send(InFlight { batch, acks });
    }
}

impl<E: Effects> InOrder<E> {
    /// Starts finishing, with at most `in_flight` batches (at least 1) handed over and not
    /// finished.
    pub fn start(effects: Arc<E>, in_flight: usize) -> InOrder<E> {
        let (tx, rx) = mpsc::channel(in_flight.max(1));
        let handing_over = Arc::new(Mutex::new(()));
        let task = tokio::spawn(finish_all(effects, rx, Arc::clone(&handing_over)));
        InOrder {
            tx,
            handing_over,
            task,
        }
    }

    /// Waits for a place among the batches in flight, then for the hand-over lock (so a
    /// finisher that publishes again finds every earlier batch queued). `None` once the
    /// finisher stopped (shutdown interrupted it, or completing a batch failed).
    pub async fn slot(&self) -> Option<Slot<'_, E>> {
        let permit = self.tx.reserve().await.ok()?;
        let handing_over = self.handing_over.lock().await;
        Some(Slot {
            permit,
            _handing_over: handing_over,
        })
    }

    /// Stops taking batches and waits until every batch handed over is finished (or the
    /// finisher stopped early); the first error of completing a batch, if any.
    pub async fn close(self) -> anyhow::Result<()> {
        drop(self.tx);
        self.task
            .await
            .map_err(|e| anyhow::anyhow!("the batch finisher panicked: {e}"))?
    }
}

async fn finish_all<E: Effects>(
    effects: Arc<E>,
    mut rx: mpsc::Receiver<InFlight<E>>,
    handing_over: Arc<Mutex<()>>,
) -> anyhow::Result<()> {
    while let Some(InFlight { batch, acks }) = rx.recv().await {
        let published = match acks.await {
            Ok(published) => published,
            Err(e) => {
                warn!(error = %e, "publishing a batch failed; publishing it and the batches after it again");
                let _paused = handing_over.lock().await;
                let mut again = vec![batch];
                while let Ok(later) = rx.try_recv() {
                    // Its acknowledgements no longer matter: it is published again after this one.
                    again.push(later.batch);
                }
                for batch in again {
                    let Some((batch, published)) = effects.republish(batch).await else {
                        return Ok(());
                    };
                    if !effects.complete(batch, published).await? {
                        return Ok(());
                    }
                }
                continue;
            }
        };
        if !effects.complete(batch, published).await? {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use tokio::sync::{oneshot, Notify};

    use super::*;

    /// What the fake publisher saw, in order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Event {
        Acked(u32),
        Republished(u32),
        /// The batch's offsets were stored.
        Completed(u32),
    }

    /// A fake publisher and store: records events; republishing batch `stall_at` waits for
    /// `release`; republishing batch `interrupt_at` reports shutdown.
    #[derive(Default)]
    struct Fake {
        events: std::sync::Mutex<Vec<Event>>,
        stall_at: Option<u32>,
        release: Notify,
        interrupt_at: Option<u32>,
    }

    impl Fake {
        fn events(&self) -> Vec<Event> {
            self.events.lock().expect("not poisoned").clone()
        }

        fn push(&self, e: Event) {
            self.events.lock().expect("not poisoned").push(e);
        }
    }

    impl Effects for Fake {
        type Batch = u32;
        type Published = ();
        type Error = String;

        async fn republish(&self, batch: u32) -> Option<(u32, ())> {
            if self.stall_at == Some(batch) {
                self.release.notified().await;
            }
            if self.interrupt_at == Some(batch) {
                return None;
            }
            self.push(Event::Republished(batch));
            Some((batch, ()))
        }

        async fn complete(&self, batch: u32, _: ()) -> anyhow::Result<bool> {
            self.push(Event::Completed(batch));
            Ok(true)
        }
    }

    /// Acknowledgements the test sends when it likes; each records `Acked` when it succeeds.
    fn acks(fake: &Arc<Fake>, batch: u32) -> (oneshot::Sender<Result<(), String>>, Acks<Fake>) {
        let (tx, rx) = oneshot::channel();
        let fake = Arc::clone(fake);
        let acks: Acks<Fake> = Box::pin(async move {
            let result = rx.await.unwrap_or_else(|_| Err("dropped".into()));
            if result.is_ok() {
                fake.push(Event::Acked(batch));
            }
            result
        });
        (tx, acks)
    }

    /// The invariant: a batch completes (stores offsets) only after it and every earlier batch
    /// were acknowledged or published again, and batches complete in hand-over order.
    fn assert_in_order(events: &[Event]) {
        let mut published: HashMap<u32, usize> = HashMap::new();
        let mut last_completed = 0;
        for (at, e) in events.iter().enumerate() {
            match *e {
                Event::Acked(b) | Event::Republished(b) => {
                    published.insert(b, at);
                }
                Event::Completed(b) => {
                    assert!(b > last_completed, "{b} completed out of order: {events:?}");
                    for earlier in 1..=b {
                        assert!(
                            published.get(&earlier).is_some_and(|p| *p < at),
                            "{b} completed before {earlier} was published: {events:?}"
                        );
                    }
                    last_completed = b;
                }
            }
        }
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn acknowledgements_out_of_order_complete_in_hand_over_order() {
        let fake = Arc::new(Fake::default());
        let finisher = InOrder::start(Arc::clone(&fake), 3);
        let mut senders = Vec::new();
        for b in 1..=3 {
            let (tx, acks) = acks(&fake, b);
            finisher.slot().await.expect("open").hand_over(b, acks);
            senders.push(tx);
        }
        let [one, two, three] = <[_; 3]>::try_from(senders).expect("three");
        three.send(Ok(())).expect("sent");
        two.send(Ok(())).expect("sent");
        settle().await;
        assert!(
            !fake
                .events()
                .iter()
                .any(|e| matches!(e, Event::Completed(_))),
            "nothing may complete before batch 1 is acknowledged: {:?}",
            fake.events()
        );
        one.send(Ok(())).expect("sent");
        finisher.close().await.expect("finished");
        let events = fake.events();
        assert_in_order(&events);
        let completed: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, Event::Completed(_)))
            .collect();
        assert_eq!(
            completed,
            [
                Event::Completed(1),
                Event::Completed(2),
                Event::Completed(3)
            ]
            .iter()
            .collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_failed_batch_and_every_later_one_are_published_again_in_order() {
        let fake = Arc::new(Fake {
            stall_at: Some(2),
            ..Fake::default()
        });
        let finisher = InOrder::start(Arc::clone(&fake), 4);
        let mut senders = Vec::new();
        for b in 1..=3 {
            let (tx, acks) = acks(&fake, b);
            finisher.slot().await.expect("open").hand_over(b, acks);
            senders.push(tx);
        }
        let [one, two, three] = <[_; 3]>::try_from(senders).expect("three");
        // Batch 3's acknowledgement arrives first, batch 1 fails, batch 2 would have succeeded.
        three.send(Ok(())).expect("sent");
        one.send(Err("broker restarted".into())).expect("sent");
        settle().await;
        // Republishing is stalled at batch 2: nothing new may be handed over meanwhile.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), finisher.slot())
                .await
                .is_err(),
            "a batch was handed over while earlier ones were being published again"
        );
        drop(two);
        fake.release.notify_one();
        let (four_tx, four_acks) = acks(&fake, 4);
        finisher.slot().await.expect("open").hand_over(4, four_acks);
        four_tx.send(Ok(())).expect("sent");
        finisher.close().await.expect("finished");
        let events = fake.events();
        assert_in_order(&events);
        let after_failure: Vec<Event> = events
            .into_iter()
            .filter(|e| !matches!(e, Event::Acked(3)))
            .collect();
        assert_eq!(
            after_failure,
            [
                Event::Republished(1),
                Event::Completed(1),
                Event::Republished(2),
                Event::Completed(2),
                Event::Republished(3),
                Event::Completed(3),
                Event::Acked(4),
                Event::Completed(4),
            ]
        );
    }

    #[tokio::test]
    async fn shutdown_mid_flight_stores_no_later_offsets() {
        let fake = Arc::new(Fake {
            interrupt_at: Some(2),
            ..Fake::default()
        });
        let finisher = InOrder::start(Arc::clone(&fake), 3);
        let mut senders = Vec::new();
        for b in 1..=3 {
            let (tx, acks) = acks(&fake, b);
            finisher.slot().await.expect("open").hand_over(b, acks);
            senders.push(tx);
        }
        let [one, two, three] = <[_; 3]>::try_from(senders).expect("three");
        two.send(Ok(())).expect("sent");
        three.send(Ok(())).expect("sent");
        one.send(Err("timed out".into())).expect("sent");
        settle().await;
        // Shutdown interrupted republishing batch 2: the finisher stopped, taking nothing new.
        assert!(
            finisher.slot().await.is_none(),
            "a stopped finisher took a batch"
        );
        finisher.close().await.expect("stopped cleanly");
        let events = fake.events();
        assert_in_order(&events);
        assert!(
            !events.contains(&Event::Completed(2)) && !events.contains(&Event::Completed(3)),
            "offsets stored after shutdown interrupted an earlier batch: {events:?}"
        );
        assert!(events.contains(&Event::Completed(1)));
    }
}
