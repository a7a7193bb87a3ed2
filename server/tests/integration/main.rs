//! Integration tests over real HTTP and WebSocket against an in-process server on a random
//! loopback port. Every test runs on SQLite, and again on PostgreSQL when
//! `KEYWAY_TEST_PG_URL` is set.

mod accounts;
mod binary;
mod channel;
mod common;
mod credentials;
mod events;
mod invites;
mod malformed;
mod multi;
mod revocations;
mod roles;
mod tenant;
mod unlock;
mod webhooks;
