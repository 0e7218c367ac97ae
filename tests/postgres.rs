//! PostgreSQL: the conformance suite, plus what only a real concurrent database can break.

annals_tests::conformance_suite!(conformance, annals_tests::postgres);
