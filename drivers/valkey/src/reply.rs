//! Reading the library's status arrays into typed results.

use crate::library;
use keel_log::{LogError, Partition};
use redis::Value;

/// A function's reply: its status and the values after it.
pub(crate) struct Reply {
    pub status: i64,
    pub values: Vec<Value>,
}

impl Reply {
    pub(crate) fn parse(partition: Partition, value: Value) -> Result<Reply, LogError> {
        let Value::Array(mut items) = value else {
            return Err(unexpected(partition, &value));
        };
        if items.is_empty() {
            return Err(unexpected(partition, &Value::Array(items)));
        }
        let status = match items.remove(0) {
            Value::Int(status) => status,
            other => return Err(unexpected(partition, &other)),
        };
        Ok(Reply {
            status,
            values: items,
        })
    }

    pub(crate) fn int(&self, partition: Partition, at: usize) -> Result<u64, LogError> {
        match self.values.get(at) {
            Some(Value::Int(n)) => u64::try_from(*n).map_err(|_| {
                LogError::storage(partition, format!("negative number {n} in a reply"))
            }),
            other => Err(unexpected(partition, other.unwrap_or(&Value::Nil))),
        }
    }

    pub(crate) fn text(&self, partition: Partition, at: usize) -> Result<String, LogError> {
        match self.values.get(at) {
            Some(Value::BulkString(bytes)) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            other => Err(unexpected(partition, other.unwrap_or(&Value::Nil))),
        }
    }

    /// Maps the statuses every writing function shares to their errors.
    pub(crate) fn check_fenced(self, partition: Partition, epoch: u64) -> Result<Reply, LogError> {
        if self.status == library::FENCED {
            let current = self.int(partition, 0)?;
            return Err(LogError::Fenced {
                partition,
                epoch,
                current,
            });
        }
        Ok(self)
    }
}

pub(crate) fn unexpected(partition: Partition, value: &Value) -> LogError {
    LogError::storage(
        partition,
        format!("unexpected reply from the keel library: {value:?}"),
    )
}

pub(crate) fn bulk(partition: Partition, value: Value) -> Result<Vec<u8>, LogError> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        other => Err(unexpected(partition, &other)),
    }
}
