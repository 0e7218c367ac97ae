//! The systems under test, one module each.

pub mod annals;
pub mod cqrs_es;
pub mod disintegrate;
pub mod esrs;
pub mod floor;
