//! A broker link that supervises itself: its state, its connection in force, the readers of its
//! subscriptions, and the task that watches the connection and reconnects with the core's
//! [`Backoff`], for adapters whose client library does not reconnect by itself.
//!
//! An adapter says how to open and check a connection ([`LinkDriver`]) and what a reader is
//! ([`LinkReader`]); [`Link`] does the rest: the generations the layer sees in [`LinkState`],
//! taking the link down when a reader or the check finds it broken, ending every reader then
//! (the layer subscribes anew once the link is back), and refusing a reader that started on a
//! connection since lost.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use switchboard_core::{TransportError, backoff::Backoff, sync::lock, transport::BoxFuture};
use tokio::{
    sync::{Notify, watch},
    task::AbortHandle,
};

use crate::{LinkState, SubscriptionId};

/// How an adapter opens and checks its connection.
pub trait LinkDriver: Send + Sync + 'static {
    /// The connection in force (cheap to clone: a handle).
    type Connection: Clone + Send + Sync + 'static;

    /// Opens a connection.
    fn open(self: &Arc<Self>) -> BoxFuture<'_, Result<Self::Connection, TransportError>>;

    /// Waits a while, then says whether `connection` still works: `Err` says why not, and
    /// takes the link down. Called again and again while the link is up.
    fn check<'a>(&'a self, connection: &'a Self::Connection) -> BoxFuture<'a, Result<(), String>>;

    /// Lets go of a connection the link no longer uses (by default, drops it).
    fn release(&self, connection: Self::Connection) {
        drop(connection);
    }
}

/// What reads one subscription or consumer: ended when the subscription is, or when the link
/// is lost or closed.
pub trait LinkReader: Send + 'static {
    /// Stops reading at once; the connection is gone or going, so nothing is said to the broker.
    fn abort(&self);

    /// Ends the subscription on a live link (by default, as [`LinkReader::abort`] does).
    fn end(self)
    where
        Self: Sized,
    {
        self.abort();
    }
}

impl LinkReader for AbortHandle {
    fn abort(&self) {
        AbortHandle::abort(self);
    }
}

impl LinkReader for Vec<AbortHandle> {
    fn abort(&self) {
        self.iter().for_each(AbortHandle::abort);
    }
}

/// One link to a broker: see the [module](self).
pub struct Link<C, R> {
    /// The broker as messages name it, such as `the Redis server at redis://h:6379`.
    server: String,
    state: watch::Sender<LinkState>,
    up: AtomicBool,
    generation: AtomicU64,
    current: Mutex<Option<C>>,
    readers: Mutex<HashMap<u64, R>>,
    next_reader: AtomicU64,
    /// Woken by a reader whose connection broke: the link goes down at once.
    lost: Notify,
}

impl<C, R> std::fmt::Debug for Link<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("server", &self.server).finish_non_exhaustive()
    }
}

impl<C: Clone + Send + Sync + 'static, R: LinkReader> Link<C, R> {
    /// A link to `server` (how messages name it: `the AMQP broker at amqp://h:5672`), up on
    /// `connection`.
    pub fn new(server: String, connection: C) -> Arc<Self> {
        let link = Arc::new(Link {
            server,
            state: watch::Sender::new(LinkState::Closed),
            up: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            current: Mutex::new(None),
            readers: Mutex::new(HashMap::new()),
            next_reader: AtomicU64::new(1),
            lost: Notify::new(),
        });
        link.set_up(connection);
        link
    }

    /// Starts the task that keeps the link up: checks the connection while it is, reconnects
    /// with `backoff` when it is not. Aborting the handle stops it.
    pub fn supervise<D>(self: &Arc<Self>, driver: Arc<D>, backoff: Backoff) -> AbortHandle
    where
        D: LinkDriver<Connection = C>,
    {
        tokio::spawn(self.clone().run(driver, backoff)).abort_handle()
    }

    async fn run<D: LinkDriver<Connection = C>>(self: Arc<Self>, driver: Arc<D>, backoff: Backoff) {
        let mut attempt = 0;
        loop {
            if self.up.load(Ordering::Acquire) {
                attempt = 0;
                let Some(connection) = lock(&self.current).clone() else {
                    self.go_down(&*driver, "no connection");
                    continue;
                };
                tokio::select! {
                    () = self.lost.notified() => self.go_down(&*driver, "a connection broke"),
                    checked = driver.check(&connection) => {
                        if let Err(why) = checked {
                            self.go_down(&*driver, &why);
                        }
                    }
                }
                continue;
            }
            match driver.open().await {
                Ok(connection) => {
                    attempt = 0;
                    self.set_up(connection);
                }
                Err(error) => {
                    tracing::debug!(%error, server = %self.server, "reconnecting");
                    tokio::time::sleep(backoff.delay(attempt)).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    fn set_up(&self, connection: C) {
        *lock(&self.current) = Some(connection);
        self.up.store(true, Ordering::Release);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.state.send_replace(LinkState::Up { generation });
    }

    fn go_down<D: LinkDriver<Connection = C>>(&self, driver: &D, why: &str) {
        if !self.up.swap(false, Ordering::AcqRel) {
            return;
        }
        let current = lock(&self.current).take();
        self.abort_readers();
        if let Some(connection) = current {
            driver.release(connection);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let error =
            TransportError::disconnected(format!("lost the connection to {}: {why}", self.server));
        tracing::debug!(server = %self.server, why, "link down");
        self.state.send_replace(LinkState::Down { generation, error });
    }

    /// The connection in force and its generation, or why nothing can be sent.
    pub fn check(&self) -> Result<(u64, C), TransportError> {
        let current = lock(&self.current).clone();
        match current {
            Some(connection) if self.up.load(Ordering::Acquire) => {
                Ok((self.generation.load(Ordering::Acquire), connection))
            }
            _ => Err(TransportError::not_connected(format!("no connection to {}", self.server))),
        }
    }

    /// Replaces the connection in force, unless the link was lost since `generation` (for a
    /// part of it the broker closed while the rest lives on, such as an AMQP channel).
    pub fn replace(&self, generation: u64, connection: C) {
        let mut current = lock(&self.current);
        if current.is_some() && self.generation.load(Ordering::Acquire) == generation {
            *current = Some(connection);
        }
    }

    /// Keeps a subscription's reader, unless the link was lost since `generation` (then the
    /// reader is ended and the subscription fails).
    pub fn keep(&self, generation: u64, reader: R) -> Result<SubscriptionId, TransportError> {
        let mut kept = lock(&self.readers);
        if !self.up.load(Ordering::Acquire) || self.generation.load(Ordering::Acquire) != generation
        {
            drop(kept);
            reader.end();
            return Err(TransportError::disconnected(format!(
                "lost the connection to {} while subscribing",
                self.server
            )));
        }
        let id = self.next_reader.fetch_add(1, Ordering::Relaxed);
        kept.insert(id, reader);
        Ok(SubscriptionId(id))
    }

    /// Ends one subscription's reader.
    pub fn unsubscribe(&self, id: SubscriptionId) {
        let reader = lock(&self.readers).remove(&id.0);
        if let Some(reader) = reader {
            reader.end();
        }
    }

    /// Says that a reader's connection broke: the link goes down at once.
    pub fn lost(&self) {
        self.lost.notify_one();
    }

    /// The link's state, as [`crate::Bus::link`] reports it.
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.state.subscribe()
    }

    /// The broker as messages name it.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn abort_readers(&self) {
        for (_, reader) in lock(&self.readers).drain() {
            reader.abort();
        }
    }

    /// Closes the link for good (its owner stops the supervisor first): ends every reader,
    /// reports [`LinkState::Closed`] and returns the connection that was in force, if any.
    pub fn close(&self) -> Option<C> {
        self.abort_readers();
        self.up.store(false, Ordering::Release);
        let current = lock(&self.current).take();
        self.state.send_replace(LinkState::Closed);
        current
    }
}
