//! The bounded queue between a connection and one local reader of a stream (a signal
//! subscription): when it is full, the connection waits for the reader instead of dropping.
//!
//! A delivery that finds the queue full is *held*: the transport stops reading from its
//! connection until the reader takes something, so the sender slows down and nothing is lost.
//! A reader that stays full for longer than the client's `slow_reader_timeout` is declared
//! lagging: from then on its messages are dropped without waiting, and counted, until it has
//! read half its queue; the count reaches the reader in order, as an [`Entry::Missed`] placed
//! where the gap is (before the next message, or once the reader has read everything queued). A stalled reader therefore costs its connection one timeout, not one per
//! message.

use crate::sync::lock;
use std::{
    collections::VecDeque,
    pin::pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
};

use tokio::{sync::Notify, time::Instant};

/// What a reader takes from its queue.
#[derive(Debug)]
pub(crate) enum Entry<T> {
    /// The next message.
    Item(T),
    /// This many messages were dropped here because the reader fell behind.
    Missed(u64),
}

/// What became of an offered message.
pub(crate) enum Offer<T> {
    /// Queued, or dropped for a lagging reader (and counted), or the reader is gone.
    Done,
    /// The queue is full: hand the message to [`ReaderQueue::hold`].
    Full(T),
}

/// One reader's queue; the connection side and the reader share it.
#[derive(Debug)]
pub(crate) struct ReaderQueue<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// Wakes a held delivery when the reader takes something or goes away.
    taken: Notify,
}

#[derive(Debug)]
struct State<T> {
    entries: VecDeque<Entry<T>>,
    /// Set once the reader stayed full past the timeout; cleared when it has read half its queue.
    lagging: bool,
    /// Messages dropped since the reader was last told.
    missed: u64,
    /// No more messages will come: the reader gets `None` once it has read what is queued.
    closed: bool,
    /// The reader was dropped: messages are discarded.
    reader_gone: bool,
    /// The reader waiting for an entry, woken when one is queued or the queue closes.
    reader_waker: Option<Waker>,
}

/// Wakes the reader, if it is waiting.
fn wake_reader<T>(state: &mut State<T>) {
    if let Some(waker) = state.reader_waker.take() {
        waker.wake();
    }
}

impl<T> ReaderQueue<T> {
    /// An empty queue for up to `capacity` messages (at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        ReaderQueue {
            state: Mutex::new(State {
                entries: VecDeque::new(),
                lagging: false,
                missed: 0,
                closed: false,
                reader_gone: false,
                reader_waker: None,
            }),
            capacity: capacity.max(2),
            taken: Notify::new(),
        }
    }

    /// Whether the reader has gone away (its queue can be forgotten).
    pub(crate) fn reader_gone(&self) -> bool {
        lock(&self.state).reader_gone
    }

    /// Queues a message without waiting, if there is room or the reader is lagging.
    pub(crate) fn offer(&self, item: T) -> Offer<T> {
        let mut state = lock(&self.state);
        if state.reader_gone || state.closed {
            return Offer::Done;
        }
        if state.lagging {
            if state.entries.len() > self.capacity / 2 {
                state.missed += 1;
                return Offer::Done;
            }
            state.lagging = false;
        }
        if state.entries.len() >= self.capacity {
            return Offer::Full(item);
        }
        self.push(&mut state, item);
        Offer::Done
    }

    /// Waits until the reader has room for `item`, but not past `deadline`: then the reader is
    /// declared lagging and `item` is dropped and counted.
    pub(crate) async fn hold(&self, item: T, deadline: Instant) {
        loop {
            let mut taken = pin!(self.taken.notified());
            taken.as_mut().enable();
            {
                let mut state = lock(&self.state);
                if state.reader_gone || state.closed {
                    return;
                }
                if state.entries.len() < self.capacity {
                    self.push(&mut state, item);
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, taken).await.is_err() {
                let mut state = lock(&self.state);
                if state.entries.len() < self.capacity {
                    self.push(&mut state, item);
                } else if !(state.reader_gone || state.closed) {
                    state.lagging = true;
                    state.missed += 1;
                }
                return;
            }
        }
    }

    /// Drops a message the full queue has no room for, without waiting: the reader lags.
    pub(crate) fn give_up(&self) {
        let mut state = lock(&self.state);
        state.lagging = true;
        state.missed += 1;
    }

    /// Queues a notice the reader must see even when its queue is full (a lost connection).
    pub(crate) fn force(&self, item: T) {
        let mut state = lock(&self.state);
        if !(state.reader_gone || state.closed) {
            self.push(&mut state, item);
        }
    }

    /// No more messages: the reader gets what is queued, then `None`.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        wake_reader(&mut state);
        drop(state);
        self.taken.notify_one();
    }

    /// Places the count of dropped messages before `item`, so the reader sees the gap where it is.
    fn push(&self, state: &mut State<T>, item: T) {
        if state.missed > 0 {
            let missed = std::mem::take(&mut state.missed);
            state.entries.push_back(Entry::Missed(missed));
        }
        state.entries.push_back(Entry::Item(item));
        wake_reader(state);
    }

    /// Takes the next entry, or registers `cx` to be woken when there is one; `None` once the
    /// queue is closed and empty.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Entry<T>>> {
        let mut state = lock(&self.state);
        if let Some(entry) = state.entries.pop_front() {
            drop(state);
            self.taken.notify_one();
            return Poll::Ready(Some(entry));
        }
        if state.missed > 0 {
            // Read to the end of a gap: report it now rather than with the next message.
            state.lagging = false;
            return Poll::Ready(Some(Entry::Missed(std::mem::take(&mut state.missed))));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        match &mut state.reader_waker {
            Some(waker) => waker.clone_from(cx.waker()),
            slot @ None => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes the next entry, waiting for one; `None` once the queue is closed and empty.
    #[cfg(test)]
    pub(crate) async fn next(&self) -> Option<Entry<T>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The reader went away: discard what is queued and release a held delivery.
    pub(crate) fn drop_reader(&self) {
        let mut state = lock(&self.state);
        state.reader_gone = true;
        state.entries.clear();
        drop(state);
        self.taken.notify_one();
    }
}

/// The reader's end of a [`ReaderQueue`]: dropping it tells the connection side.
#[derive(Debug)]
pub(crate) struct QueueReader<T> {
    queue: Arc<ReaderQueue<T>>,
}

impl<T> QueueReader<T> {
    pub(crate) fn new(queue: Arc<ReaderQueue<T>>) -> Self {
        QueueReader { queue }
    }

    /// Takes the next entry, or registers `cx` to be woken when there is one; `None` once the
    /// queue is closed and empty.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Entry<T>>> {
        self.queue.poll_next(cx)
    }
}

impl<T> Drop for QueueReader<T> {
    fn drop(&mut self) {
        self.queue.drop_reader();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn item<T: std::fmt::Debug>(entry: Option<Entry<T>>) -> T {
        match entry {
            Some(Entry::Item(item)) => item,
            other => panic!("expected an item, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_message_until_the_reader_takes_one() {
        let queue = Arc::new(ReaderQueue::new(2));
        assert!(matches!(queue.offer(1), Offer::Done));
        assert!(matches!(queue.offer(2), Offer::Done));
        let Offer::Full(third) = queue.offer(3) else { panic!("the queue should be full") };
        let held = {
            let queue = queue.clone();
            tokio::spawn(async move {
                queue.hold(third, Instant::now() + Duration::from_secs(30)).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!held.is_finished(), "a held delivery waits for room");
        assert_eq!(item(queue.next().await), 1);
        held.await.unwrap();
        assert_eq!(item(queue.next().await), 2);
        assert_eq!(item(queue.next().await), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_reader_lags_and_is_told_how_much_it_missed() {
        let queue = ReaderQueue::new(4);
        for n in 0..4 {
            assert!(matches!(queue.offer(n), Offer::Done));
        }
        let Offer::Full(held) = queue.offer(4) else { panic!("the queue should be full") };
        queue.hold(held, Instant::now() + Duration::from_secs(1)).await;
        // Lagging: no more waiting, messages are counted instead.
        assert!(matches!(queue.offer(5), Offer::Done));
        assert_eq!(item(queue.next().await), 0);
        assert!(matches!(queue.offer(6), Offer::Done), "still above half full");
        assert_eq!(item(queue.next().await), 1);
        // Half read: the reader has caught up, and hears of the gap before the next message.
        assert!(matches!(queue.offer(7), Offer::Done));
        assert_eq!(item(queue.next().await), 2);
        assert_eq!(item(queue.next().await), 3);
        assert!(matches!(queue.next().await, Some(Entry::Missed(3))));
        assert_eq!(item(queue.next().await), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_at_the_end_is_reported_once_the_reader_has_read_everything() {
        let queue = ReaderQueue::new(2);
        let _ = queue.offer(0);
        let _ = queue.offer(1);
        let Offer::Full(held) = queue.offer(2) else { panic!("the queue should be full") };
        queue.hold(held, Instant::now() + Duration::from_millis(10)).await;
        assert_eq!(item(queue.next().await), 0);
        assert_eq!(item(queue.next().await), 1);
        assert!(matches!(queue.next().await, Some(Entry::Missed(1))));
        let _ = queue.offer(3);
        assert_eq!(item(queue.next().await), 3);
    }

    #[tokio::test]
    async fn giving_up_on_a_full_queue_counts_the_message() {
        let queue = ReaderQueue::new(2);
        let _ = queue.offer(0);
        let _ = queue.offer(1);
        assert!(matches!(queue.offer(2), Offer::Full(2)));
        queue.give_up();
        assert_eq!(item(queue.next().await), 0);
        assert!(matches!(queue.offer(3), Offer::Done));
        assert_eq!(item(queue.next().await), 1);
        assert!(matches!(queue.next().await, Some(Entry::Missed(1))));
        assert_eq!(item(queue.next().await), 3);
    }

    #[tokio::test]
    async fn a_forced_notice_passes_a_full_queue_and_close_ends_the_reader() {
        let queue = ReaderQueue::new(2);
        let _ = queue.offer("a");
        let _ = queue.offer("b");
        queue.force("lost");
        queue.close();
        assert!(matches!(queue.offer("late"), Offer::Done));
        assert_eq!(item(queue.next().await), "a");
        assert_eq!(item(queue.next().await), "b");
        assert_eq!(item(queue.next().await), "lost");
        assert!(queue.next().await.is_none());
    }

    #[tokio::test]
    async fn a_dropped_reader_releases_a_held_delivery() {
        let queue = Arc::new(ReaderQueue::new(2));
        let reader = QueueReader::new(queue.clone());
        let _ = queue.offer(1);
        let _ = queue.offer(2);
        let Offer::Full(third) = queue.offer(3) else { panic!("the queue should be full") };
        let held = {
            let queue = queue.clone();
            tokio::spawn(async move {
                queue.hold(third, Instant::now() + Duration::from_secs(30)).await;
            })
        };
        tokio::task::yield_now().await;
        drop(reader);
        tokio::time::timeout(Duration::from_secs(5), held).await.unwrap().unwrap();
        assert!(queue.reader_gone());
    }
}
