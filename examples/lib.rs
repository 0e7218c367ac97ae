//! Runnable examples of annals: see the `[[example]]` targets.
