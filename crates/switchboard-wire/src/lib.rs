//! What each transport puts on the wire for each messaging pattern, as pure data: the Unix
//! socket's frame kinds and codes, MQTT's topic templates with their QoS and retain flags, and
//! the subjects and queues of the brokered layer (NATS, Redis, AMQP), and the names commlib-py
//! gives a node's endpoints.
//!
//! The transports build their wire from these tables, and the code generators render the
//! "On the wire" sections of the Markdown reference and the AsyncAPI document from the same
//! tables, so a generated document cannot say something the transport does not do. This crate
//! performs no I/O and depends on nothing, so the generators (and the interface checker, which
//! validates an interface file's topic templates) use it without pulling in any transport.

pub mod broker;
pub mod filter;
pub mod mqtt;
pub mod node;
pub mod unix;
