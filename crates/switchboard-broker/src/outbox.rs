//! A server's ordered way out: answers and events to clients, and its presence.
//!
//! What the bus takes at once goes out at once, from the caller (a request's answer, made on the
//! adapter's reader, costs no task switch); what it does not, and everything behind it, waits in
//! order for the writer task. The farewell is the last thing the writer sends.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use switchboard_core::{TransportError, TransportErrorKind, transport::BoxFuture};
use tokio::sync::{mpsc, oneshot};

use crate::{
    bus::{Bus, BusMessage},
    client::FAREWELL_TIMEOUT,
    log_limit::{LogLimit, limited_warn},
};

/// How many messages may wait for the bus before the outbox refuses more.
const CAPACITY: usize = 16 * 1024;

/// Something to send.
pub(crate) enum Outgoing {
    /// An answer or an event, to a client's inbox.
    Send(String, BusMessage),
    /// An event on a topic (a node's action status and feedback).
    Publish(String, BusMessage),
    /// The server's presence.
    Announce(BusMessage),
}

/// What the writer task is given.
enum Queued {
    /// Not started yet; boxed, as a message with its addresses is much larger than the other
    /// variants, and only a message that must wait behind others is queued this way.
    Outgoing(Box<Outgoing>),
    /// Started, and waiting for room at the bus.
    Started(BoxFuture<'static, Result<(), TransportError>>),
    /// The farewell presence; then the bus closes, and the sender learns it has.
    Close(Option<BusMessage>, oneshot::Sender<()>),
}

/// The ordered way out of one server.
#[derive(Debug)]
pub(crate) struct Outbox {
    bus: Arc<dyn Bus>,
    presence: Arc<str>,
    queue: mpsc::Sender<Queued>,
    /// Messages given to the writer and not yet sent: while there are any, new ones queue too.
    waiting: Arc<AtomicUsize>,
    log: LogLimit,
}

impl Outbox {
    /// An outbox on `bus` announcing on `presence`, and its writer task.
    pub(crate) fn start(bus: Arc<dyn Bus>, presence: String) -> Self {
        let (queue, queued) = mpsc::channel(CAPACITY);
        let presence: Arc<str> = Arc::from(presence);
        let waiting = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write(bus.clone(), presence.clone(), queued, waiting.clone()));
        Outbox { bus, presence, queue, waiting, log: LogLimit::new() }
    }

    /// Sends `item` now if nothing waits before it and the bus takes it at once; else queues
    /// it, failing when the queue is full.
    pub(crate) fn push(&self, item: Outgoing) -> Result<(), TransportError> {
        let queued = match self.try_now(item) {
            Ok(result) => return result,
            Err(queued) => queued,
        };
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.queue.try_send(queued).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            let error = TransportError::new(
                TransportErrorKind::Io,
                "the server's outgoing queue is full: the broker does not keep up",
            );
            limited_warn!(self.log, %error, "an answer or an event was dropped");
            error
        })
    }

    /// Like [`push`](Self::push), waiting up to `patience` for room in a full queue.
    pub(crate) async fn push_waiting(
        &self,
        item: Outgoing,
        patience: Duration,
    ) -> Result<(), TransportError> {
        let queued = match self.try_now(item) {
            Ok(result) => return result,
            Err(queued) => queued,
        };
        self.waiting.fetch_add(1, Ordering::AcqRel);
        match tokio::time::timeout(patience, self.queue.send(queued)).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                Err(TransportError::new(
                    TransportErrorKind::Io,
                    "the server's outgoing queue stayed full: the broker does not keep up",
                ))
            }
        }
    }

    /// Queues the farewell presence (if the server announces itself), after which the writer
    /// closes the bus. The future completes once the bus is closed (or the writer is gone),
    /// bounded by the farewell's own timeout.
    pub(crate) fn close(&self, farewell: Option<BusMessage>) -> BoxFuture<'static, ()> {
        let queue = self.queue.clone();
        Box::pin(async move {
            let (closed, finished) = oneshot::channel();
            if queue.send(Queued::Close(farewell, closed)).await.is_ok() {
                let _ = tokio::time::timeout(2 * FAREWELL_TIMEOUT, finished).await;
            }
        })
    }

    /// Sends at once when nothing waits and the bus takes it without waiting; otherwise returns
    /// what to queue (started, if it was).
    fn try_now(&self, item: Outgoing) -> Result<Result<(), TransportError>, Queued> {
        if self.waiting.load(Ordering::Acquire) != 0 {
            return Err(Queued::Outgoing(Box::new(item)));
        }
        let mut sending = sending(self.bus.clone(), self.presence.clone(), item);
        // Polled once, with nothing to wake: if it waits, the writer polls it from then on.
        match sending.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => Ok(result),
            Poll::Pending => Err(Queued::Started(sending)),
        }
    }
}

/// The sending of `item`, owning what it needs.
fn sending(
    bus: Arc<dyn Bus>,
    presence: Arc<str>,
    item: Outgoing,
) -> BoxFuture<'static, Result<(), TransportError>> {
    Box::pin(async move {
        match item {
            Outgoing::Send(address, message) => bus.send(&address, message).await,
            Outgoing::Publish(topic, message) => bus.publish(&topic, message).await,
            Outgoing::Announce(message) => bus.announce(&presence, message).await,
        }
    })
}

/// Sends what was queued, in order, until the farewell; then closes the bus.
async fn write(
    bus: Arc<dyn Bus>,
    presence: Arc<str>,
    mut queued: mpsc::Receiver<Queued>,
    waiting: Arc<AtomicUsize>,
) {
    let log = LogLimit::new();
    let mut closed = None;
    while let Some(item) = queued.recv().await {
        let sent = match item {
            Queued::Outgoing(item) => sending(bus.clone(), presence.clone(), *item).await,
            Queued::Started(sending) => sending.await,
            Queued::Close(farewell, done) => {
                if let Some(farewell) = farewell {
                    let farewell = bus.publish(&presence, farewell);
                    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, farewell).await;
                }
                closed = Some(done);
                break;
            }
        };
        waiting.fetch_sub(1, Ordering::AcqRel);
        if let Err(error) = sent {
            limited_warn!(log, %error, "could not send an answer or an event");
        }
    }
    bus.close().await;
    if let Some(closed) = closed {
        let _ = closed.send(());
    }
}
