//! The conformance suite for actions, commands, typed errors and events to one client (to be written).
