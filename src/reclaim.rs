//! Giving memory back once a phase that used many threads is over.
//!
//! The allocator keeps what a thread frees in that thread's own heap, for
//! the thread to use again. The runtime's worker threads drive the calls of
//! a fleet read (connections, their buffers, the SDK's answers); once the
//! read is over they sit idle, and what they freed stays resident while the
//! planner, on another thread, asks the system for more: 16 MB of the
//! benchmark's 10,000-cluster plan (its anonymous memory while planning,
//! 69 → 53 MB). The same holds for the planner's thread once the live
//! state is freed, before the plan is rendered on other threads
//! ([`release_here`]).
//!
//! [`release_idle`] asks each worker to hand its free memory back to the
//! system the next time it has nothing to do: once per request, so a busy
//! apply does not pay for it at every pause. The binary installs the
//! allocator's collector with [`set_collector`]; without one (the library
//! in tests, with the system allocator) this does nothing.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Returns the calling thread's free memory to the system.
static COLLECTOR: OnceLock<fn()> = OnceLock::new();
/// Bumped by each [`release_idle`].
static REQUESTS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last request this thread answered.
    static ANSWERED: Cell<u64> = const { Cell::new(0) };
}

/// Installs the allocator's collector (once; later calls are ignored).
pub fn set_collector(collect: fn()) {
    let _ = COLLECTOR.set(collect);
}

/// Asks every worker thread to give its free memory back the next time it
/// parks.
pub fn release_idle() {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// Gives the calling thread's free memory back to the system now.
pub fn release_here() {
    if let Some(collect) = COLLECTOR.get() {
        collect();
    }
}

/// The runtime's park hook: answers an open request, once per thread.
pub fn on_park() {
    let Some(collect) = COLLECTOR.get() else {
        return;
    };
    if ANSWERED.with(|answered| due(REQUESTS.load(Ordering::Relaxed), answered)) {
        collect();
    }
}

/// Whether a thread that last answered `answered` owes an answer to the
/// requests made so far (`asked`); it is then up to date.
fn due(asked: u64, answered: &Cell<u64>) -> bool {
    answered.replace(asked) != asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_is_answered_once_per_thread() {
        let (one, two) = (Cell::new(0), Cell::new(0));
        assert!(!due(0, &one), "nothing was asked yet");
        assert!(due(1, &one));
        assert!(!due(1, &one), "a second park owes nothing");
        assert!(due(1, &two), "another thread answers too");
        // Two requests while a thread was busy: one answer covers both.
        assert!(due(3, &one));
        assert!(!due(3, &one));
    }
}
