//! The gateway's shared state: one connection per service instance, opened on first use with
//! the CLI's own [`Session`] (runtime introspection, no generated code) and kept for later
//! requests, the goals it started, and the bound on open event streams.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::Semaphore;

use super::{error::ApiError, goals::Goals};
use crate::{
    cli::ConnectArgs,
    exit::Failure,
    session::{Service, Session},
};

/// The most service instances the gateway keeps connections to at once.
const MAX_SESSIONS: usize = 256;

/// `(interface, instance)`.
pub(crate) type ServiceKey = (String, String);

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// Where the services live, and the request timeout.
    pub(crate) conn: ConnectArgs,
    sessions: Mutex<HashMap<ServiceKey, Arc<Session>>>,
    /// Held while a connection is opened, so two requests do not open the same one twice.
    opening: tokio::sync::Mutex<()>,
    /// The goals started through the gateway.
    pub(crate) goals: Goals,
    /// One permit per open event stream.
    pub(crate) streams: Arc<Semaphore>,
    /// The most event streams open at once.
    pub(crate) max_streams: usize,
}

impl Gateway {
    pub(crate) fn new(conn: ConnectArgs, max_streams: usize) -> Self {
        Gateway {
            conn,
            sessions: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
            goals: Goals::default(),
            streams: Arc::new(Semaphore::new(max_streams)),
            max_streams,
        }
    }

    fn cached(&self, key: &ServiceKey) -> Option<Arc<Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }

    /// The connection to `interface/instance`, opened (and described) on first use.
    pub(crate) async fn session(
        &self,
        interface: &str,
        instance: &str,
    ) -> Result<Arc<Session>, ApiError> {
        if interface.is_empty() || instance.is_empty() {
            let message = "the interface and the instance must not be empty".to_owned();
            return Err(Failure::Usage(message).into());
        }
        let key = (interface.to_owned(), instance.to_owned());
        if let Some(session) = self.cached(&key) {
            return Ok(session);
        }
        let _opening = self.opening.lock().await;
        if let Some(session) = self.cached(&key) {
            return Ok(session);
        }
        if self.sessions.lock().unwrap_or_else(PoisonError::into_inner).len() >= MAX_SESSIONS {
            return Err(ApiError::unavailable(format!(
                "the gateway is connected to {MAX_SESSIONS} services already"
            )));
        }
        let service =
            Service { interface: interface.to_owned(), instance: Some(instance.to_owned()) };
        let session = Arc::new(Session::open(&self.conn, &service).await?);
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).insert(key, session.clone());
        Ok(session)
    }

    /// Passes `result` on; a transport failure drops the connection, so the next request
    /// reconnects instead of failing the same way.
    pub(crate) fn checked<T>(
        &self,
        interface: &str,
        instance: &str,
        result: Result<T, Failure>,
    ) -> Result<T, ApiError> {
        if let Err(Failure::Transport(_)) = &result {
            let key = (interface.to_owned(), instance.to_owned());
            let removed = self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
            if let Some(session) = removed {
                session.client.close();
            }
        }
        Ok(result?)
    }

    /// Any open connection to an instance of `interface`.
    pub(crate) fn any_session_of(&self, interface: &str) -> Option<Arc<Session>> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.iter().find(|((i, _), _)| i == interface).map(|(_, s)| s.clone())
    }

    /// Closes every connection.
    pub(crate) fn close(&self) {
        let sessions =
            std::mem::take(&mut *self.sessions.lock().unwrap_or_else(PoisonError::into_inner));
        for session in sessions.values() {
            session.client.close();
        }
    }
}
