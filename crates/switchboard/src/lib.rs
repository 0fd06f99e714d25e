//! switchboard: describe an interface once in YAML, get typed Rust servers and clients that talk
//! over a brokerless Unix socket or an MQTT v5 broker.
//!
//! Code generated from the interface file (by `switchboard_codegen::Builder` in `build.rs`, or
//! `switchboard generate --lang rust`) is the main way in: a handler trait, a server handle, a
//! client and the interface's types. This crate gives it the runtime. Its root holds what nearly
//! every program names, [`Endpoint`], [`DateTime`] and [`Duration`]; the rest is grouped by
//! what it is for:
//!
//! - [`prelude`]: the handful of types a server implementation and a client's error handling
//!   name, for `use switchboard::prelude::*`;
//! - [`client`]: client options, signal streams and property watches;
//! - [`server`]: server options and what a handler learns about each call;
//! - [`action`]: goals of long-running actions, on both sides;
//! - [`error`]: the errors calls return and handlers raise;
//! - [`transport`]: endpoints and each transport's own settings;
//! - [`node`]: RPCs, publishers and subscribers named at run time, with no interface file,
//!   speaking commlib-py's wire on its brokers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Where the service lives: the default Unix socket for its interface and instance.
//! let endpoint = switchboard::Endpoint::parse("unix:")?;
//! // Generated: let client = ThermostatClient::connect(&endpoint).await?;
//! # let _ = endpoint; Ok(()) }
//! ```

#[cfg(not(any(
    feature = "unix",
    feature = "mqtt",
    feature = "nats",
    feature = "redis",
    feature = "amqp"
)))]
compile_error!(
    "switchboard needs at least one transport feature; enable \"unix\" (the default), \"mqtt\", \"nats\", \"redis\" or \"amqp\"."
);

pub mod bridge;
mod daemon;
mod endpoint;
pub mod node;

pub use endpoint::Endpoint;

/// A point in time, in UTC: the Rust type of `datetime`.
pub type DateTime = chrono::DateTime<chrono::Utc>;

/// A signed span of time with nanosecond precision: the Rust type of `duration`.
pub type Duration = chrono::TimeDelta;

/// The `chrono` crate that [`DateTime`] and [`Duration`] come from, so a program can call
/// `switchboard::chrono::Utc::now()` without a `chrono` dependency (and version) of its own.
pub use chrono;

pub mod prelude {
    //! The types a server implementation and a client's error handling name most:
    //! `use switchboard::prelude::*;`.

    pub use crate::{
        DateTime, Duration, Endpoint,
        action::{GoalContext, GoalError},
        error::{CallError, HandlerError, MethodError, RemoteError},
        server::CallContext,
    };
}

pub mod client {
    //! The client side: connection options, signal streams and property watches.
    //!
    //! Generated clients (`<Interface>Client`) connect with [`ClientOptions`] and return the streams.

    pub use switchboard_core::client::{
        ClientOptions, DEFAULT_CALL_TIMEOUT, DEFAULT_GOAL_RECONNECT_TIMEOUT,
        DEFAULT_SLOW_READER_TIMEOUT, PropertyWatch, SIGNAL_BUFFER, SignalStream, SubscriptionError,
    };
}

pub mod server {
    //! The server side: options and what a handler learns about the client that called.
    //!
    //! Generated servers (`<Interface>Server::serve_with`) take [`ServerOptions`]; every handler
    //! function receives a [`CallContext`].

    pub use switchboard_core::{
        CallContext, PeerCredentials, PeerId,
        server::{
            DEFAULT_ACTION_LIMIT, DEFAULT_DISCONNECT_GRACE, DEFAULT_GOAL_RETENTION,
            DEFAULT_GOAL_RETENTION_BYTES, ENDED_GOAL_OVERHEAD, ServerOptions,
        },
    };

    pub use crate::daemon::{ShutdownSignal, shutdown_signal};
}

pub mod action {
    //! Actions: the goal a handler runs ([`GoalContext`]) and the handle a client follows it with
    //! ([`GoalHandle`]).

    pub use switchboard_core::{
        GoalContext, GoalError, GoalHandle, GoalId, GoalStatus,
        action::{FEEDBACK_BUFFER, GoalOutcome, GoalSnapshot},
    };
}

pub mod error {
    //! Errors: what a call returns ([`CallError`], [`MethodError`]), what a handler raises
    //! ([`RemoteError`], [`HandlerError`]), and the parts they share.
    //!
    //! "The server said no" ([`CallError::Remote`]) is always kept apart from "the transport broke"
    //! ([`CallError::Transport`]).

    pub use switchboard_core::{
        CallError, DeclaredError, DecodeError, ErrorCode, HandlerError, MethodError, RemoteError,
        TransportError, TransportErrorKind, error::names,
    };
}

pub mod transport {
    //! Transports: [`Endpoint`] URLs and each transport's own settings.

    pub use crate::endpoint::{Endpoint, EndpointParseError, URL_ENV};
    pub use switchboard_core::transport::{
        BoundedWaits, Discoverer, SEQUENTIAL_WAITS, ServiceInfo,
    };

    #[cfg(feature = "unix")]
    pub mod unix {
        //! The Unix-socket transport: default socket locations and options.

        pub use switchboard_transport_unix::{UnixEndpoint, UnixOptions, default_socket_dir};
    }

    #[cfg(feature = "mqtt")]
    pub mod mqtt {
        //! The MQTT v5 transport: brokers, options and URL parsing (wire-compatible with StingerIPC).

        pub use switchboard_transport_mqtt::{
            ANY_INSTANCE, Broker, MqttEndpoint, MqttOptions, MqttUrlError,
        };
    }
}

/// Includes the Rust that `switchboard_codegen::Builder` generated in `build.rs`.
///
/// Name the interface the way the generated file is named: the interface's `name` in snake
/// case, which is also the name `switchboard generate --lang rust` gives the file. An interface
/// named `GreenHouse` (in `greenhouse.yaml` or any other file) is included as `"green_house"`:
///
/// ```ignore
/// mod green_house {
///     switchboard::include_interface!("green_house");
/// }
/// ```
///
/// A name that was not generated fails the build with the list of names that were. The items
/// land in the module where the macro is invoked (through a hidden child module and a `pub use`).
#[macro_export]
macro_rules! include_interface {
    ($name:tt) => {
        #[doc(hidden)]
        mod __switchboard_generated {
            include!(concat!(env!("OUT_DIR"), "/switchboard/index.rs"));
            __switchboard_include_interface!($name);
        }
        pub use self::__switchboard_generated::*;
    };
}

/// The only surface generated code uses. Not a public API: it changes with the generator.
#[doc(hidden)]
pub mod __private;
