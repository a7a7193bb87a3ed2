//! Keyway companion server (work in progress).
