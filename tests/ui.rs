//! Compile-error and must-compile cases for the macros: one file per mistake under
//! `ui/<macro>/fail/`, with the expected compiler output beside it in a `.stderr` file, and
//! programs under `ui/<macro>/pass/` that must compile, run and pass their assertions.
//!
//! After an intentional change to a diagnostic, regenerate the expected output with
//! `TRYBUILD=overwrite cargo test -p annals-tests --test ui` and review the `.stderr` diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*/fail/*.rs");
    t.pass("ui/*/pass/*.rs");
}
