//! The channel from the apply engine to the view that renders its events.
//!
//! It never blocks the engine and never grows with time: a view that falls
//! behind (a slow terminal, a pipe nobody reads) sees every event except
//! intermediate polls. When an `update_polled` event is sent while the last
//! queued event of the same step is an `update_polled` the view has not
//! taken yet, the older one is dropped: only the latest status of a wait
//! matters. What stays queued is then bounded by the plan (a few events per
//! step), not by how long the updates take or how often they are polled.
//!
//! This module only moves events; it must not render or decide anything.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::event::Event;

/// Makes a connected sender and receiver.
pub fn channel() -> (EventSender, EventReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            events: VecDeque::new(),
            senders: 1,
            receiver_gone: false,
            coalesced: 0,
        }),
        ready: Notify::new(),
    });
    (
        EventSender {
            shared: shared.clone(),
        },
        EventReceiver { shared },
    )
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Notify,
}

struct Queue {
    events: VecDeque<Event>,
    senders: usize,
    receiver_gone: bool,
    /// Polls dropped for a newer one of the same step.
    coalesced: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No code panics while holding the lock; a poisoned queue is intact.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The engine's end. Cloning it adds a sender; the receiver sees the end of
/// the stream once every sender is dropped.
pub struct EventSender {
    shared: Arc<Shared>,
}

/// The receiver went away; the event was not queued.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

impl EventSender {
    /// Queues `event` without waiting.
    pub fn send(&self, event: Event) -> Result<(), Closed> {
        let mut q = self.shared.lock();
        if q.receiver_gone {
            return Err(Closed);
        }
        if let Event::UpdatePolled { step_id, .. } = &event {
            let last_of_step = q
                .events
                .iter()
                .rposition(|e| e.step_id() == Some(step_id.as_str()));
            if let Some(i) = last_of_step {
                if matches!(q.events[i], Event::UpdatePolled { .. }) {
                    q.events.remove(i);
                    q.coalesced += 1;
                }
            }
        }
        q.events.push_back(event);
        drop(q);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Clone for EventSender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        EventSender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.senders -= 1;
        let last = q.senders == 0;
        drop(q);
        if last {
            self.shared.ready.notify_one();
        }
    }
}

/// The view's end.
pub struct EventReceiver {
    shared: Arc<Shared>,
}

impl EventReceiver {
    /// The next event, or `None` once every sender is gone and the queue is
    /// empty.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            {
                let mut q = self.shared.lock();
                if let Some(e) = q.events.pop_front() {
                    return Some(e);
                }
                if q.senders == 0 {
                    return None;
                }
            }
            // `notify_one` keeps a permit when nobody waits, so an event sent
            // between the check above and this await is not missed.
            self.shared.ready.notified().await;
        }
    }

    /// Events queued and not yet taken.
    pub fn len(&self) -> usize {
        self.shared.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many intermediate polls were dropped so far.
    pub fn coalesced(&self) -> u64 {
        self.shared.lock().coalesced
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.receiver_gone = true;
        q.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::StepOutcome;

    fn poll(step: &str, status: &str) -> Event {
        Event::UpdatePolled {
            elapsed_ms: 0,
            step_id: step.into(),
            update_id: Some(format!("u-{step}")),
            status: status.into(),
        }
    }

    fn finished(step: &str) -> Event {
        Event::StepFinished {
            elapsed_ms: 0,
            step_id: step.into(),
            outcome: StepOutcome::Done,
            message: String::new(),
        }
    }

    fn waiting(step: &str) -> Event {
        Event::WaitingForUpdate {
            elapsed_ms: 0,
            step_id: step.into(),
            update_id: None,
            reason: String::new(),
        }
    }

    #[tokio::test]
    async fn a_view_that_does_not_read_holds_a_bounded_queue() {
        let (tx, mut rx) = channel();
        for round in 0..10_000 {
            for step in ["a", "b", "c"] {
                tx.send(poll(step, &format!("InProgress {round}"))).unwrap();
            }
        }
        assert_eq!(rx.len(), 3);
        assert_eq!(rx.coalesced(), 29_997);
        tx.send(finished("a")).unwrap();
        drop(tx);
        let mut got = Vec::new();
        while let Some(e) = rx.recv().await {
            got.push(e);
        }
        assert_eq!(
            got,
            [
                poll("a", "InProgress 9999"),
                poll("b", "InProgress 9999"),
                poll("c", "InProgress 9999"),
                finished("a")
            ]
        );
    }

    #[tokio::test]
    async fn only_polls_that_nothing_of_their_step_follows_are_replaced() {
        let (tx, mut rx) = channel();
        tx.send(poll("a", "1")).unwrap();
        tx.send(waiting("a")).unwrap();
        tx.send(poll("a", "2")).unwrap();
        tx.send(poll("a", "3")).unwrap();
        tx.send(finished("a")).unwrap();
        drop(tx);
        let mut got = Vec::new();
        while let Some(e) = rx.recv().await {
            got.push(e);
        }
        assert_eq!(
            got,
            [poll("a", "1"), waiting("a"), poll("a", "3"), finished("a")]
        );
    }

    #[tokio::test]
    async fn a_reader_waiting_is_woken_and_sees_the_end() {
        let (tx, mut rx) = channel();
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        });
        let tx2 = tx.clone();
        tokio::task::yield_now().await;
        tx.send(finished("a")).unwrap();
        tx2.send(finished("b")).unwrap();
        drop(tx);
        drop(tx2);
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("the reader ends")
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn sending_after_the_receiver_left_fails() {
        let (tx, rx) = channel();
        drop(rx);
        assert_eq!(tx.send(finished("a")), Err(Closed));
    }
}
