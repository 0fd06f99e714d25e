//! Unit tests for the loader, the checker and the renderers.
