//! One conformance suite, run against every backend (zmap-api.md Part A4).
