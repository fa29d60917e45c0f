//! What crosses the simulated network: replica fetches and their answers, AlterPartition
//! and its answer, heartbeats and registrations.

use crate::replica::state::IsrAnswer;
use strom_metadata::IsrChange;
use uuid::Uuid;

/// Where a fetch was sent from, as the real fetcher's `FetchPosition`.
#[derive(Clone, Copy, Debug)]
pub(super) struct FetchAt {
    /// Tells a fetch's answer apart from others' (a correlation id).
    pub(super) request: u64,
    pub(super) partition: i32,
    pub(super) fetch_offset: i64,
    pub(super) last_fetched_epoch: i32,
    pub(super) leader: i32,
    pub(super) leader_epoch: i32,
}

#[derive(Debug, Clone)]
pub(super) enum FetchReply {
    Records { records: Vec<(u64, i32)>, high_watermark: i64 },
    Diverging { epoch: i32, end_offset: i64 },
    OutOfRange { leader_end: i64 },
    Error,
}

#[derive(Debug, Clone)]
pub(super) enum Msg {
    Fetch { from: i32, life: u64, at: FetchAt },
    FetchReply { life: u64, at: FetchAt, reply: FetchReply },
    AlterIsr { change: IsrChange, life: u64 },
    AlterIsrDone { life: u64, change: IsrChange, answer: IsrAnswer },
    Heartbeat { broker_epoch: i64 },
    Register { incarnation: Uuid, life: u64 },
    Registered { life: u64, broker_epoch: i64 },
}

pub(super) struct InFlight {
    pub(super) at: u64,
    pub(super) seq: u64,
    pub(super) to: i32,
    /// The broker a message to the controller came from.
    pub(super) from: i32,
    pub(super) msg: Msg,
}
