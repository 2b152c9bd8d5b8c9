//! flowloom: declarative parallel work sessions for one git repository.
//!
//! `manifest` (what is wanted) and `state` (what the repository holds, read through gix)
//! meet in `plan`, a pure function; `apply` carries a plan out; `render` prints it, through
//! the one door in `output`.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod copy;
pub mod error;
pub mod exclude;
pub mod fsutil;
pub mod hooks;
pub mod import;
pub mod index_v4;
pub mod inspect;
pub mod lock;
pub mod machine;
pub mod manifest;
pub mod metadata;
pub mod names;
pub mod output;
pub mod ownership;
pub mod plan;
pub mod progress;
pub mod recover;
pub mod refs;
pub mod render;
pub mod saved;
pub mod setup;
pub mod state;
pub mod status;
