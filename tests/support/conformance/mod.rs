//! The behaviour every [`EventStore`](annals::EventStore) must have, written once as generic
//! checks and instantiated per backend by `conformance_suite!`: one `#[tokio::test]` per
//! check, named `<backend>::<topic>::<check>`.
//!
//! Nothing here is tied to the backends of this workspace. A third-party backend runs the
//! whole suite with one line in a test of its own, given an async fn that returns a fresh
//! [`Fixture`](crate::Fixture) for each test:
//!
//! ```text
//! annals_tests::conformance_suite!(my_backend, my_crate::fresh_fixture);
//! ```
//!
//! # Adding a check
//!
//! Write `pub async fn name<S: EventStore>(store: S)` in the topic file it belongs to, with
//! a doc comment saying what every store must do. Nothing else: `build.rs` finds every
//! `pub async fn` of the topic files and `conformance_suite!` runs each on every backend.
//! A `pub async fn` of any other shape in a topic file fails the build, so no check is
//! ever left out; helpers belong in `helpers.rs`.
//!
//! # Adding a topic
//!
//! A new file here, starting with a one-line `//!` doc, plus one `pub mod name;` line below.

mod helpers;

pub mod append;
pub mod commands;
pub mod decode;
pub mod inline;
pub mod input;
pub mod operations;
pub mod projections;
pub mod read;
pub mod snapshots;
pub mod subscriptions;

// The backend tests (tests/postgres.rs, tests/sqlite.rs) build on these.
pub use append::concurrent_appends_settle_each_on_its_own;
pub use helpers::{all_events, hammer_one_stream, streams_share};
