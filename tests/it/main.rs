//! The integration tests, as one test binary: cargo links one executable
//! instead of one per file. Each module was a file of its own under
//! tests/; the test names are unchanged. All tests of all modules run as
//! threads of one process, so no test may change process-wide state
//! (environment variables, current directory, umask, signal handlers):
//! they pass environments to the commands they start
//! (`stays_in_tempdirs::no_test_changes_process_wide_state`).

mod harness;

mod architecture;
mod attach;
mod audit;
mod audit_equals_check;
mod audit_html;
mod audit_json;
mod auto_attach;
mod cache;
mod cfg2cmd;
mod completions;
mod config;
mod coverage;
mod custom_model;
mod env_vars;
mod faults;
mod faults_cli;
mod guard;
mod ha_rules;
mod help;
mod hook_record;
mod human_output;
mod json_fields;
mod kvm_probe;
mod kvm_view;
mod launch;
mod levels;
mod limits;
mod man;
mod metrics;
mod migrate_refresh;
mod next_steps;
mod no_kvm;
mod one_age;
mod one_policy;
mod package;
mod parsers_never_panic;
mod pipes;
mod plan;
mod probe_once;
mod proxlb_tags;
mod publish;
mod pvestatd;
mod recommendations;
mod remote_migration;
mod running_guest;
mod same_story;
mod scan;
mod staleness;
mod stays_in_tempdirs;
mod systemd;
mod width;
