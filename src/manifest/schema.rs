//! The serde schema of `flowloom.toml`, with spans (placeholder until the validator lands).
