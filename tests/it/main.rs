//! One integration-test binary (one link step): every module drives the real flowloom
//! binary on temp repositories and checks the result with the git CLI.

mod adversarial;
mod agents;
mod beside;
mod common;
mod core;
mod dashboard;
mod declarative;
mod differential;
mod environment;
mod escapes;
mod examples;
mod fidelity;
mod finished;
mod hostile;
mod index_v4;
mod layering;
mod never_lose_work;
mod safety;
mod saved_plans;
mod team;
mod workflow;
