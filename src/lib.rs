//! flowloom: declarative parallel work sessions for one git repository.
//!
//! `manifest` (what is wanted) and `state` (what the repository holds, read through gix)
//! meet in `plan`, a pure function; `apply` carries a plan out; `render` prints it.

pub mod cli;
pub mod manifest;
