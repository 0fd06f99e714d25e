//! Signals between a connection's tasks that are cheap enough to check around every frame.
//!
//! The reader and writer loops race each read and write against the signals that end them.
//! With `tokio::sync::watch` channels each race built a `wait_for` future that registered with
//! the channel's waiter list under a lock and unregistered when dropped, several times per frame:
//! about a tenth of a method call's instructions. Here a signal is an atomic plus a waker slot
//! for the one task that waits ([`wait_until`]), so a check is an atomic load and, when the task
//! is about to sleep, a waker store. [`Stop`] is the one-way signal that ends a server connection.

use std::{
    future::{Future, poll_fn},
    sync::atomic::{AtomicBool, Ordering},
    task::Poll,
};

use futures_util::task::AtomicWaker;

/// Resolves once `ready` returns true. Whoever makes it true must then wake `slot`, and only one
/// task may wait on a slot at a time.
pub(crate) fn wait_until<'a>(
    slot: &'a AtomicWaker,
    ready: impl Fn() -> bool + 'a,
) -> impl Future<Output = ()> + 'a {
    poll_fn(move |cx| {
        // Register before checking, so a change in between is not missed.
        slot.register(cx.waker());
        if ready() { Poll::Ready(()) } else { Poll::Pending }
    })
}

/// Which task waits: each side has its own waker slot, so exactly one task may wait as each.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    /// The task reading the connection.
    Reader,
    /// The task writing the connection.
    Writer,
}

/// Raised once, never lowered; raising wakes whichever side is waiting.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    raised: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Stop {
    /// Raises the signal and wakes both sides.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.reader.wake();
        self.writer.wake();
    }

    /// Whether the signal was raised.
    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Resolves once the signal is raised; `side` names the task that waits.
    pub(crate) fn raised(&self, side: Side) -> impl Future<Output = ()> + '_ {
        let slot = match side {
            Side::Reader => &self.reader,
            Side::Writer => &self.writer,
        };
        wait_until(slot, || self.is_raised())
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[tokio::test]
    async fn raising_wakes_both_sides() {
        let stop = Arc::new(Stop::default());
        let waiters = [Side::Reader, Side::Writer].map(|side| {
            let stop = stop.clone();
            tokio::spawn(async move { stop.raised(side).await })
        });
        tokio::task::yield_now().await;
        assert!(!stop.is_raised());
        stop.raise();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("woken")
                .expect("task");
        }
        // Raised stays raised.
        stop.raised(Side::Reader).await;
    }
}
