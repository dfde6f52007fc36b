//! The `matrix-os` binary.
fn main() {}
