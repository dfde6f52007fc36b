//! Rebuilds when embedded files are added (migrations, the built-in home template): the
//! `sqlx::migrate!` and `include_dir!` macros only notice changes to files they already saw.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=home-template");
}
