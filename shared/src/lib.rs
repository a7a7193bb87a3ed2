//! Keyway mobile core (work in progress).
