//! Integration tests against a real nsqd live in `tests/`.
