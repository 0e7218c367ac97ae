//! The conformance suite: the same behaviour checks against every backend.

annals_tests::conformance_suite!(memory, annals_tests::memory);
annals_tests::conformance_suite!(sqlite, annals_tests::sqlite_file);
annals_tests::conformance_suite!(sqlite_in_memory, annals_tests::sqlite_memory);
