//! What each transport puts on the wire for each messaging pattern, as pure data: the Unix
//! socket's frame kinds and codes, MQTT's topic templates with their QoS and retain flags.
//!
//! The transports build their wire from these tables, and the code generators render the
//! "On the wire" sections of the Markdown reference and the AsyncAPI document from the same
//! tables, so a generated document cannot say something the transport does not do. This crate
//! performs no I/O and depends on nothing, so the generators (and the interface checker, which
//! validates an interface file's topic templates) use it without pulling in any transport.

pub mod mqtt;
pub mod unix;
