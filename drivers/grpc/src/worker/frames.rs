//! Commands in frames cut to the coordinator's size limit. (What an outcome too large
//! for any frame becomes is the machine's decision, `keel_protocol::worker`.)

use crate::proto;
use prost::Message;
use std::collections::VecDeque;

/// `commands` in frames of at most `limit` bytes each; a command larger than the limit
/// on its own goes alone.
pub(crate) fn split_frames(
    commands: Vec<proto::WorkerCommand>,
    limit: usize,
) -> Vec<proto::WorkerFrame> {
    let mut waiting = VecDeque::from(commands);
    let mut frames = Vec::new();
    while !waiting.is_empty() {
        frames.push(take_frame(&mut waiting, limit));
    }
    frames
}

/// The first frame of `waiting`: the longest run of its first commands within `limit`
/// bytes, and at least one.
pub(crate) fn take_frame(
    waiting: &mut VecDeque<proto::WorkerCommand>,
    limit: usize,
) -> proto::WorkerFrame {
    let mut commands = Vec::new();
    let mut size = 0usize;
    while let Some(command) = waiting.front() {
        let n = command.encoded_len();
        let n = 1 + prost::length_delimiter_len(n) + n;
        if !commands.is_empty() && size.saturating_add(n) > limit {
            break;
        }
        size = size.saturating_add(n);
        commands.extend(waiting.pop_front());
    }
    proto::WorkerFrame { commands }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::worker_command::Command;

    #[test]
    fn frames_are_cut_to_the_limit() {
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
    }
}
