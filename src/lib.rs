//! flowloom: declarative parallel work sessions for one git repository.
//!
//! The code runs in stages, one folder each (see `docs/ARCHITECTURE.md`):
//! `manifest` (what is wanted) and `read` (what the repository holds, read through gix)
//! meet in `plan`, which decides every step; `apply` carries a plan out; `render` puts
//! plans, reports and the dashboard into words, through the one door in `render::output`.
//! `store` holds the files flowloom keeps of its own (ownership record, metadata, the apply
//! lock, `info/exclude`, per-user trust and ports); `commands` is the command layer that
//! wires the stages together.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod error;
pub mod escape;
pub mod fsutil;
pub mod hooks;
pub mod manifest;
pub mod names;
pub mod plan;
pub mod read;
pub mod render;
pub mod status;
pub mod store;
