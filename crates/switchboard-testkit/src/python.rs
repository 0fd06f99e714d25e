//! Python virtual environments for cross-language tests (to be written).
