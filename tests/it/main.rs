//! One integration-test binary (one link step): every module drives the real flowloom
//! binary on temp repositories and checks the result with the git CLI.

mod adversarial;
mod agents;
mod beside;
mod broken_manifest;
mod common;
mod core;
mod dashboard;
mod declarative;
mod differential;
mod environment;
mod escapes;
mod examples;
mod fidelity;
mod fidelity4;
mod finished;
mod first_use;
mod hostile;
mod index_v4;
mod layering;
mod layers;
mod merge;
mod merge_attacks;
mod merge_filters;
mod never_lose_work;
mod new_as_git;
mod rm_all_or_nothing;
mod safety;
mod saved_plans;
mod shell_function;
mod stranded;
mod team;
mod teardown;
mod trust_prompt;
mod workflow;
