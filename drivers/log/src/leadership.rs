//! Leadership bookkeeping for stores that keep it beside the log in one process's
//! memory or one file (the in-memory and redb logs). Expiry uses the wall clock.

use crate::error::LogError;
use crate::{Epoch, Partition};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A partition's leadership record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadershipState {
    /// The current epoch; writes under any other are fenced.
    pub epoch: Epoch,
    /// Who leads, if anyone.
    pub holder: Option<String>,
    /// Wall-clock milliseconds after which another holder may take over.
    pub expires_ms: u64,
}

impl LeadershipState {
    /// Takes leadership for `holder` under a new epoch, unless another holder's lease
    /// is still running.
    pub fn acquire(
        &mut self,
        partition: Partition,
        holder: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Epoch, LogError> {
        if let Some(current) = &self.holder {
            if current != holder && now_ms < self.expires_ms {
                return Err(LogError::LeaseHeld {
                    partition,
                    holder: current.clone(),
                });
            }
        }
        self.epoch += 1;
        self.holder = Some(holder.to_owned());
        self.expires_ms = now_ms.saturating_add(ttl_ms(ttl));
        Ok(self.epoch)
    }

    /// Extends the lease of the leader at `epoch`; fenced for anyone else.
    pub fn renew(
        &mut self,
        partition: Partition,
        epoch: Epoch,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(), LogError> {
        self.check(partition, epoch)?;
        self.expires_ms = now_ms.saturating_add(ttl_ms(ttl));
        Ok(())
    }

    /// Gives up leadership at `epoch`; the epoch moves on so its writes are fenced.
    pub fn step_down(&mut self, partition: Partition, epoch: Epoch) -> Result<(), LogError> {
        self.check(partition, epoch)?;
        self.epoch += 1;
        self.holder = None;
        self.expires_ms = 0;
        Ok(())
    }

    /// Whether `epoch` is the current leader's, as every write must be.
    pub fn check(&self, partition: Partition, epoch: Epoch) -> Result<(), LogError> {
        if epoch == self.epoch && self.holder.is_some() {
            Ok(())
        } else {
            Err(LogError::Fenced {
                partition,
                epoch,
                current: self.epoch,
            })
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(ttl_ms)
        .unwrap_or(0)
}

pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}
