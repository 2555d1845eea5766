//! The names a scenario may use for what it counts (`kind:name`) and for how a job
//! ends, drawn from the engine's own labels and the simulator's checks, so a misspelt
//! name is refused when the file loads instead of counting nothing.

use crate::check::Check;
use keel_engine::{Effect, EndReason, JobOutcome, Rejection, WorkerCommand};

/// The short name of every worker command, as used in counts (`complete:stale_fence`).
pub(crate) const COMMANDS: [&str; 14] = [
    "register",
    "heartbeat",
    "request",
    "drain",
    "deregister",
    "accept",
    "release",
    "renew",
    "complete",
    "fail",
    "suspend",
    "usage",
    "emit",
    "ack",
];

/// The short name of a worker command (one of [`COMMANDS`]).
pub(crate) fn command_kind(c: &WorkerCommand) -> &'static str {
    match c {
        WorkerCommand::Register { .. } => "register",
        WorkerCommand::Heartbeat => "heartbeat",
        WorkerCommand::RequestWork { .. } => "request",
        WorkerCommand::Drain => "drain",
        WorkerCommand::Deregister => "deregister",
        WorkerCommand::AcceptGrant { .. } => "accept",
        WorkerCommand::ReleaseGrant { .. } => "release",
        WorkerCommand::Renew { .. } => "renew",
        WorkerCommand::Complete { .. } => "complete",
        WorkerCommand::Fail { .. } => "fail",
        WorkerCommand::Suspend { .. } => "suspend",
        WorkerCommand::ReportUsage { .. } => "usage",
        WorkerCommand::Emit { .. } => "emit",
        WorkerCommand::Ack { .. } => "ack",
    }
}

/// Commands whose acceptance is counted as `<command>:accepted` (a usage report also
/// as `usage:duplicate` when its key was already counted).
const COUNTED_ACCEPTS: [&str; 6] = ["register", "complete", "fail", "suspend", "emit", "ack"];

/// The count kinds that are not commands, each with what its names are.
const KINDS: [(&str, &str); 7] = [
    ("effect", "effect"),
    ("revoke", "end reason"),
    ("requeue", "end reason"),
    ("withdraw", "end reason"),
    ("reject", "rejection code"),
    ("lease", "lease event"),
    ("check", "check"),
];

/// Every name valid after `kind:`, or `None` for an unknown kind.
pub(crate) fn names(kind: &str) -> Option<Vec<&'static str>> {
    let reasons = || EndReason::ALL.iter().map(|r| r.label()).collect();
    Some(match kind {
        "effect" => Effect::LABELS.to_vec(),
        "revoke" | "requeue" | "withdraw" => reasons(),
        "reject" => Rejection::CODES.to_vec(),
        "lease" => vec!["started"],
        "check" => Check::ALL.iter().map(|c| c.name()).collect(),
        command => {
            let command = COMMANDS.iter().find(|c| **c == command)?;
            let mut names = Vec::new();
            if COUNTED_ACCEPTS.contains(command) {
                names.push("accepted");
            }
            if *command == "usage" {
                names.extend(["accepted", "duplicate"]);
            }
            names.extend(Rejection::CODES);
            names
        }
    })
}

/// Checks a `kind:name`; the error says what is wrong and lists what would be right.
pub(crate) fn check_count(what: &str) -> Result<(), String> {
    let Some((kind, name)) = what.split_once(':') else {
        return Err(format!(
            "count {what:?} must be \"kind:name\", e.g. \"effect:worker_lost\"; kinds: {}",
            all_kinds()
        ));
    };
    let Some(valid) = names(kind) else {
        return Err(format!(
            "unknown count kind {kind:?} in {what:?}; kinds: {}",
            all_kinds()
        ));
    };
    if valid.contains(&name) {
        return Ok(());
    }
    let noun = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("reply", |(_, noun)| noun);
    Err(format!(
        "unknown {noun} {name:?} in {what:?}; valid after \"{kind}:\": {}",
        valid.join(", ")
    ))
}

fn all_kinds() -> String {
    let mut kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
    kinds.extend(COMMANDS);
    kinds.join(", ")
}

/// How a job may end, as `[expect.jobs]` names it.
pub(crate) fn job_outcomes() -> Vec<&'static str> {
    let mut all: Vec<&str> = JobOutcome::ALL.iter().map(|o| o.label()).collect();
    all.push("rejected");
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_pass_and_misspellings_list_the_valid_ones() {
        for ok in [
            "effect:task_requeued",
            "requeue:worker_lost",
            "reject:stale_fence",
            "complete:stale_fence",
            "complete:accepted",
            "suspend:accepted",
            "usage:accepted",
            "usage:duplicate",
            "lease:started",
            "check:double_lease",
        ] {
            assert_eq!(check_count(ok), Ok(()), "{ok}");
        }
        let e = check_count("effect:task_requeud").unwrap_err();
        assert!(
            e.contains("task_requeued") && e.contains("grant_offered"),
            "{e}"
        );
        let e = check_count("efect:task_requeued").unwrap_err();
        assert!(e.contains("kinds: effect, revoke"), "{e}");
        assert!(check_count("renew:accepted").is_err());
        assert!(check_count("effect").is_err());
    }
}
