//! The Raft library logs through `slog`; this drain forwards its lines to `tracing` with the
//! record's key-values appended. Leadership changes are logged at info, the rest of the
//! library's narration at debug.

use std::fmt::Write;

struct TracingDrain;

/// Collects a record's key-values as ` key=value`.
struct KeyValues(String);

impl slog::Serializer for KeyValues {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let mut kv = KeyValues(String::new());
        let _ = slog::KV::serialize(&record.kv(), record, &mut kv);
        let _ = slog::KV::serialize(values, record, &mut kv);
        let msg = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::error!(target: "strom::raft", "{msg}{}", kv.0),
            slog::Level::Warning => tracing::warn!(target: "strom::raft", "{msg}{}", kv.0),
            // The library narrates every step at info; an operator wants the leadership changes.
            slog::Level::Info if msg.to_string().starts_with("became leader") => {
                tracing::info!(target: "strom::raft", "{msg}{}", kv.0)
            }
            slog::Level::Info => tracing::debug!(target: "strom::raft", "{msg}{}", kv.0),
            slog::Level::Debug => tracing::debug!(target: "strom::raft", "{msg}{}", kv.0),
            slog::Level::Trace => tracing::trace!(target: "strom::raft", "{msg}{}", kv.0),
        }
        Ok(())
    }
}

/// A logger for one quorum member.
pub fn raft_logger(node_id: u64) -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!("node" => node_id))
}
