//! The `patchbay` command line: wiring only.
#![forbid(unsafe_code)]

fn main() {}
