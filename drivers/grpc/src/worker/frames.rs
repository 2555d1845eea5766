//! What fits a frame. Frames are cut to the coordinator's size limit. An outcome that
//! cannot fit any frame (an output larger than the coordinator accepts) is reported as a
//! permanent failure naming the limit rather than sent and refused again after every
//! reconnect; failure and progress messages are cut to what the coordinator accepts.

use super::task::Outcome;
use crate::proto;
use crate::server::FRAME_OVERHEAD_BYTES;
use crate::validate::MAX_ERROR_BYTES;
use prost::Message;

/// `outcome` as it can be reported under a coordinator accepting frames of
/// `frame_limit` bytes (unknown: anything).
pub(crate) fn reportable(outcome: Outcome, frame_limit: Option<usize>) -> Outcome {
    match outcome {
        Outcome::Complete(output) => {
            let room = frame_limit.map_or(usize::MAX, |l| l.saturating_sub(FRAME_OVERHEAD_BYTES));
            if output.len() <= room {
                return Outcome::Complete(output);
            }
            let limit = frame_limit.unwrap_or_default();
            Outcome::Fail {
                error: format!(
                    "the task's output of {} bytes does not fit the coordinator's max_message_bytes ({limit} bytes)",
                    output.len()
                ),
                permanent: true,
            }
        }
        Outcome::Fail { error, permanent } => Outcome::Fail {
            error: cut(error, MAX_ERROR_BYTES),
            permanent,
        },
        other => other,
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `commands` in frames of at most `limit` bytes each; a command larger than the limit
/// on its own goes alone.
pub(crate) fn split_frames(
    commands: Vec<proto::WorkerCommand>,
    limit: usize,
) -> Vec<proto::WorkerFrame> {
    let mut frames = Vec::new();
    let mut current = Vec::new();
    let mut size = 0usize;
    for command in commands {
        let n = command.encoded_len();
        let n = 1 + prost::length_delimiter_len(n) + n;
        if !current.is_empty() && size.saturating_add(n) > limit {
            frames.push(proto::WorkerFrame {
                commands: std::mem::take(&mut current),
            });
            size = 0;
        }
        size = size.saturating_add(n);
        current.push(command);
    }
    if !current.is_empty() {
        frames.push(proto::WorkerFrame { commands: current });
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::worker_command::Command;

    #[test]
    fn frames_are_cut_to_the_limit_and_long_messages_to_what_is_accepted() {
        let command = |seq: u64, bytes: usize| proto::WorkerCommand {
            seq,
            command: Some(Command::Complete(proto::Complete {
                fence: None,
                output: vec![0; bytes],
            })),
        };
        let commands = vec![
            command(1, 400),
            command(2, 400),
            command(3, 2_000),
            command(4, 10),
        ];
        let frames = split_frames(commands, 1_000);
        let seqs: Vec<Vec<u64>> = frames
            .iter()
            .map(|f| f.commands.iter().map(|c| c.seq).collect())
            .collect();
        assert_eq!(seqs, vec![vec![1, 2], vec![3], vec![4]]);
        assert!(split_frames(Vec::new(), 1_000).is_empty());
        assert_eq!(cut("héllo".into(), 2), "h");
        assert_eq!(cut("abc".into(), 10), "abc");
        let long = Outcome::Fail {
            error: "x".repeat(MAX_ERROR_BYTES + 10),
            permanent: false,
        };
        assert!(
            matches!(reportable(long, None), Outcome::Fail { error, .. } if error.len() == MAX_ERROR_BYTES)
        );
    }
}
