//! [`ValkeyLog`]: the [`Log`] contract on Valkey. Every write is one call of a library
//! function that checks the caller's epoch and the log's end atomically with the write.

use crate::classify::classify;
use crate::conn::Conn;
use crate::keys::PartitionKeys;
use crate::library;
use crate::options::{ConnectError, ValkeyOptions};
use crate::reply::{bulk, unexpected, Reply};
use keel_log::batch_frame::{batch_frame_len, entries_from, records, write_batch};
use keel_log::record::{decode_snapshot, encode_snapshot};
use keel_log::{
    Bounds, Epoch, Leadership, Log, LogError, Offset, Outcome, Partition, Record, Snapshot,
};
use redis::aio::ConnectionManagerConfig;
use redis::cluster::ClusterClientBuilder;
use redis::{Cmd, RedisError, RedisWrite, Value};
use std::time::{Duration, Instant};

/// The Keel log on Valkey or Valkey Cluster: each partition's entries, snapshot and
/// fenced lease in keys of one hash slot, changed only through the `keel` functions.
pub struct ValkeyLog {
    conn: Conn,
    options: ValkeyOptions,
    /// How errors name the store: `valkey at <url>`.
    store: String,
}

impl ValkeyLog {
    /// Connects to a standalone server (or a primary), e.g. `redis://127.0.0.1:6379`,
    /// and loads this build's function library (replacing any other version, so
    /// coordinators sharing a server should run the same library version).
    pub async fn connect(url: &str, options: ValkeyOptions) -> Result<ValkeyLog, ConnectError> {
        let fail = |source| ConnectError::Connect {
            url: url.to_owned(),
            source,
        };
        let client = redis::Client::open(url).map_err(fail)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connection_timeout))
            .set_number_of_retries(2)
            // The default backoff multiplies its one-second delay by 100 per attempt, so
            // after a server restart every request waited on a reconnection sleeping
            // 100 s; at most a second between attempts, and each failed request starts
            // a new reconnection.
            .set_max_delay(std::time::Duration::from_secs(1));
        let manager = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(fail)?;
        let store = format!("valkey at {url}");
        ValkeyLog::with_conn(Conn::Standalone(Box::new(manager)), options, store).await
    }

    /// Connects to a Valkey Cluster through any of its nodes.
    pub async fn connect_cluster(
        urls: &[String],
        options: ValkeyOptions,
    ) -> Result<ValkeyLog, ConnectError> {
        let fail = |source| ConnectError::Connect {
            url: urls.join(","),
            source,
        };
        let client = ClusterClientBuilder::new(urls.to_vec())
            .response_timeout(options.response_timeout)
            .connection_timeout(options.connection_timeout)
            .build()
            .map_err(fail)?;
        let conn = client.get_async_connection().await.map_err(fail)?;
        let store = format!("valkey cluster at {}", urls.join(","));
        ValkeyLog::with_conn(Conn::Cluster(conn), options, store).await
    }

    async fn with_conn(
        conn: Conn,
        options: ValkeyOptions,
        store: String,
    ) -> Result<ValkeyLog, ConnectError> {
        let log = ValkeyLog {
            conn,
            options,
            store,
        };
        log.load_library().await.map_err(ConnectError::Library)?;
        Ok(log)
    }

    async fn load_library(&self) -> Result<(), RedisError> {
        let mut load = redis::cmd("FUNCTION");
        load.arg("LOAD").arg("REPLACE").arg(library::SOURCE);
        self.conn.to_all_primaries(&load).await.map(drop)
    }

    fn keys(&self, partition: Partition) -> PartitionKeys {
        PartitionKeys::new(&self.options.key_prefix, partition)
    }

    /// The typed error for a failed request on `partition`.
    fn fail(&self, partition: Partition, e: &RedisError) -> LogError {
        classify(partition, &self.store, e)
    }

    /// Names the key a corrupt record of `partition` was read from.
    fn located(&self, e: LogError, key: &str) -> LogError {
        e.located(&format!("{}, key {key}", self.store))
    }

    /// Calls library function `name` on `partition`'s keys with `args`.
    async fn call(
        &self,
        partition: Partition,
        name: &str,
        args: &[&[u8]],
    ) -> Result<Reply, LogError> {
        let data: usize = args.iter().map(|a| a.len()).sum();
        let mut cmd = self.function_call(partition, name, args.len(), data);
        for arg in args {
            cmd.arg(*arg);
        }
        self.send(partition, &cmd).await
    }

    /// The start of a call of library function `name` on `partition`'s keys, sized for
    /// `args` more arguments of `data` bytes in all, so a large append is built in one
    /// buffer instead of one that doubles (and is copied) as it grows.
    fn function_call(&self, partition: Partition, name: &str, args: usize, data: usize) -> Cmd {
        let keys = self.keys(partition);
        let all = keys.all();
        let key_bytes: usize = all.iter().map(|k| k.len()).sum();
        let head = name.len() + key_bytes + library::VERSION.len() + 8;
        let mut cmd = Cmd::with_capacity(args + all.len() + 4, data + head);
        cmd.arg("FCALL")
            .arg(name)
            .arg(all.len())
            .arg(&all[..])
            .arg(library::VERSION);
        cmd
    }

    /// Sends a library call built by [`ValkeyLog::function_call`]; reloads the library
    /// and retries once if the server lacks it or holds another version.
    async fn send(&self, partition: Partition, cmd: &Cmd) -> Result<Reply, LogError> {
        let log_key = self.keys(partition).log;
        let fail = |e: RedisError| self.fail(partition, &e);
        let value = match self.conn.to_owner(&log_key, cmd).await {
            Err(e) if library_outdated(&e) => {
                self.load_library().await.map_err(fail)?;
                self.conn.to_owner(&log_key, cmd).await.map_err(fail)?
            }
            other => other.map_err(fail)?,
        };
        Reply::parse(partition, value)
    }

    /// Removes every key of `partition`: its log, snapshot, lease and epoch. For tools
    /// that make throwaway partitions (`keel bench-e2e`), never for a partition a
    /// coordinator may still lead: this is not fenced. The memory is freed in the
    /// background (`UNLINK`), so a large log does not stall the server.
    pub async fn delete_partition(&self, partition: Partition) -> Result<(), LogError> {
        let keys = self.keys(partition);
        let mut unlink = redis::cmd("UNLINK");
        unlink.arg(&keys.all()[..]);
        self.conn
            .to_owner(&keys.log, &unlink)
            .await
            .map(drop)
            .map_err(|e| self.fail(partition, &e))
    }

    /// Blocks until the configured number of replicas have every write this client sent
    /// to `partition`'s primary.
    async fn wait_for_replicas(&self, partition: Partition) -> Result<(), LogError> {
        let Some(wait) = self.options.wait_replicas else {
            return Ok(());
        };
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(wait.replicas)
            .arg(u64::try_from(wait.timeout.as_millis()).unwrap_or(u64::MAX));
        // The write is on the primary already, whatever happens to the wait.
        let value = self
            .conn
            .to_owner(&self.keys(partition).log, &cmd)
            .await
            .map_err(|e| match self.fail(partition, &e) {
                LogError::Unavailable {
                    partition,
                    store,
                    reason,
                    ..
                } => LogError::Unavailable {
                    partition,
                    store,
                    reason,
                    outcome: Outcome::Unknown,
                },
                other => other,
            })?;
        let acked = match value {
            Value::Int(n) => usize::try_from(n).unwrap_or(0),
            other => return Err(unexpected(partition, &other)),
        };
        if acked < wait.replicas {
            return Err(LogError::ReplicaTimeout {
                partition,
                wanted: wait.replicas,
                acked,
            });
        }
        Ok(())
    }
}

/// Bytes a record adds to the frames it holds: its header.
const BATCH_HEADER_BOUND: usize = 16;

fn library_outdated(e: &RedisError) -> bool {
    let text = e.to_string();
    text.contains("Function not found") || text.contains(library::VERSION_ERROR)
}

fn millis(ttl: Duration) -> String {
    ttl.as_millis().max(1).to_string()
}

impl Log for ValkeyLog {
    fn location(&self) -> String {
        self.store.clone()
    }

    async fn acquire(
        &self,
        partition: Partition,
        holder: &str,
        ttl: Duration,
    ) -> Result<Leadership, LogError> {
        let asked = Instant::now();
        let reply = self
            .call(
                partition,
                "keel_acquire",
                &[holder.as_bytes(), millis(ttl).as_bytes()],
            )
            .await?;
        match reply.status {
            library::OK => Ok(Leadership::granted(
                partition,
                holder,
                reply.int(partition, 0)?,
                asked,
                ttl,
            )),
            library::LEASE_HELD => Err(LogError::LeaseHeld {
                partition,
                holder: reply.text(partition, 0)?,
            }),
            _ => Err(unexpected(partition, &Value::Int(reply.status))),
        }
    }

    async fn renew(&self, lease: &Leadership, ttl: Duration) -> Result<Leadership, LogError> {
        let asked = Instant::now();
        let p = lease.partition;
        let (epoch, ttl_ms) = (lease.epoch.to_string(), millis(ttl));
        let args: [&[u8]; 3] = [lease.holder.as_bytes(), epoch.as_bytes(), ttl_ms.as_bytes()];
        self.call(p, "keel_renew", &args)
            .await?
            .check_fenced(p, lease.epoch)?;
        Ok(lease.renewed(asked, ttl))
    }

    async fn step_down(&self, lease: &Leadership) -> Result<(), LogError> {
        let p = lease.partition;
        let epoch = lease.epoch.to_string();
        self.call(p, "keel_step_down", &[epoch.as_bytes()])
            .await?
            .check_fenced(p, lease.epoch)?;
        Ok(())
    }

    async fn append(
        &self,
        partition: Partition,
        epoch: Epoch,
        start: Offset,
        payloads: &[Vec<u8>],
    ) -> Result<Offset, LogError> {
        let records = records(payloads, self.options.record_bytes);
        let data = batch_frame_len(payloads) + records.len() * (BATCH_HEADER_BOUND + 20);
        let mut cmd = self.function_call(partition, "keel_append", 2 + 2 * records.len(), data);
        cmd.arg(epoch).arg(start);
        let batch_end = start + payloads.len() as u64;
        // Each batch frame is written straight into the command: each payload is copied
        // once on its way to the socket.
        for range in records {
            let first = start + range.start as u64;
            let part = &payloads[range];
            cmd.arg(part.len());
            write_batch(
                &mut cmd.writer_for_next_arg(),
                epoch,
                first,
                batch_end,
                part,
            )
            .map_err(|e| LogError::storage(partition, format!("building an append: {e}")))?;
        }
        let reply = self
            .send(partition, &cmd)
            .await?
            .check_fenced(partition, epoch)?;
        match reply.status {
            library::OK => {
                self.wait_for_replicas(partition).await?;
                reply.int(partition, 0)
            }
            library::END_MISMATCH => Err(LogError::OffsetMismatch {
                partition,
                expected: start,
                actual: reply.int(partition, 0)?,
            }),
            _ => Err(unexpected(partition, &Value::Int(reply.status))),
        }
    }

    async fn read(
        &self,
        partition: Partition,
        from: Offset,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        let (from_arg, max_arg) = (from.to_string(), max.to_string());
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut reply = self
            .call(
                partition,
                "keel_read",
                &[from_arg.as_bytes(), max_arg.as_bytes()],
            )
            .await?;
        match reply.status {
            library::OK => {
                let Some(Value::Array(frames)) = reply.values.pop() else {
                    return Err(unexpected(partition, &Value::Array(reply.values)));
                };
                let log_key = self.keys(partition).log;
                let stored = frames
                    .into_iter()
                    .map(|frame| bulk(partition, frame))
                    .collect::<Result<Vec<_>, _>>()?;
                entries_from(partition, from, max, stored).map_err(|e| self.located(e, &log_key))
            }
            library::TRIMMED => Err(LogError::Trimmed {
                partition,
                offset: from,
                first: reply.int(partition, 0)?,
            }),
            _ => Err(unexpected(partition, &Value::Int(reply.status))),
        }
    }

    async fn bounds(&self, partition: Partition) -> Result<Bounds, LogError> {
        let reply = self.call(partition, "keel_bounds", &[]).await?;
        Ok(Bounds {
            first: reply.int(partition, 0)?,
            end: reply.int(partition, 1)?,
        })
    }

    async fn store_snapshot(
        &self,
        partition: Partition,
        epoch: Epoch,
        snapshot: &Snapshot,
    ) -> Result<(), LogError> {
        let frame = encode_snapshot(snapshot);
        let (epoch_arg, offset_arg) = (epoch.to_string(), snapshot.offset.to_string());
        let args: [&[u8]; 3] = [epoch_arg.as_bytes(), offset_arg.as_bytes(), &frame];
        let reply = self
            .call(partition, "keel_snapshot", &args)
            .await?
            .check_fenced(partition, epoch)?;
        match reply.status {
            library::OK => self.wait_for_replicas(partition).await,
            library::SNAPSHOT_OUT_OF_RANGE => Err(LogError::SnapshotOutOfRange {
                partition,
                offset: snapshot.offset,
                first: reply.int(partition, 0)?,
                end: reply.int(partition, 1)?,
            }),
            _ => Err(unexpected(partition, &Value::Int(reply.status))),
        }
    }

    async fn load_snapshot(&self, partition: Partition) -> Result<Option<Snapshot>, LogError> {
        let keys = self.keys(partition);
        let mut get = Cmd::new();
        get.arg("GET").arg(&keys.snapshot);
        match self
            .conn
            .to_owner(&keys.snapshot, &get)
            .await
            .map_err(|e| self.fail(partition, &e))?
        {
            Value::Nil => Ok(None),
            value => decode_snapshot(partition, &bulk(partition, value)?)
                .map(Some)
                .map_err(|e| self.located(e, &keys.snapshot)),
        }
    }
}
