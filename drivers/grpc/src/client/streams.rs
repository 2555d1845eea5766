//! Reading a task's output stream through [`Client`]: one page per call, safe to make
//! again (a read changes nothing), so a reader follows a running task by calling again
//! from the returned cursor, or has pages pushed to it with a tail.

use super::failover::{CallError, Client};
use super::Jobs;
use crate::proto::*;

impl Client {
    /// One page of a task's output stream (the `ReadStream` call).
    pub async fn read_stream(
        &mut self,
        request: ReadStreamRequest,
    ) -> Result<ReadStreamResponse, CallError> {
        let call = |mut jobs: Jobs| {
            let request = request.clone();
            async move { jobs.read_stream(request).await }
        };
        Ok(self.call(call).await?.0)
    }

    /// A task's output stream pushed as it grows (the `TailStream` call), from the
    /// leader. A stream that ends with an error (the coordinator went away) can be
    /// opened again from the last page's `next`: nothing is repeated or skipped.
    pub async fn tail_stream(
        &mut self,
        request: TailStreamRequest,
    ) -> Result<tonic::Streaming<ReadStreamResponse>, CallError> {
        let call = |mut jobs: Jobs| {
            let request = request.clone();
            async move { jobs.tail_stream(request).await }
        };
        Ok(self.call(call).await?.0)
    }
}
