//! Tool tests against a real home.
