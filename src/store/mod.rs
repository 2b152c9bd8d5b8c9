//! The files flowloom keeps of its own: the ownership record, each session's metadata, the
//! apply lock and a killed apply's intents, its block of `info/exclude`, the per-user
//! trust store and port registry, and the saved plans of `plan --out` (read back).

pub mod exclude;
pub mod lock;
pub mod machine;
pub mod metadata;
pub mod objects;
pub mod ownership;
pub mod recover;
pub mod saved_plan;
pub mod tracked;
