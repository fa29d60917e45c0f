//! The transaction side of `strom dump-log`: `.txnindex` files (Kafka's `dumpTxnIndex` lines)
//! and `--transaction-log-decoder`, which shows the records of `__transaction_state` as
//! Kafka 4's tool does (`key: {"type":"0","data":{...}} payload: {"version":"0","data":{...}}`).

use std::path::Path;
use strom_broker::txn::records::{self, TxnLogValue};
use strom_storage::transactions::AbortedTxn;

/// Prints each entry of an aborted-transaction index; a torn or bad entry is an error.
pub fn dump_txn_index(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    for (i, chunk) in bytes.chunks(AbortedTxn::SIZE).enumerate() {
        let e = AbortedTxn::decode(chunk).map_err(|e| format!("entry {i} (at byte {}): {e}", i * AbortedTxn::SIZE))?;
        out!(
            "version: 0 producerId: {} firstOffset: {} lastOffset: {} lastStableOffset: {}",
            e.producer_id,
            e.first_offset,
            e.last_offset,
            e.last_stable_offset
        );
    }
    Ok(())
}

/// A JSON string (quoted and escaped).
fn text(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The value as Kafka's `TransactionLogValueJsonConverter` writes it, fields in schema order.
fn value_json(v: &TxnLogValue) -> String {
    let partitions = if v.state == strom_broker::txn::state::TxnState::Empty {
        "null".to_string()
    } else {
        let topics: Vec<String> = v
            .partitions
            .iter()
            .map(|(topic, ids)| {
                let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
                format!(r#"{{"topic":{},"partitionIds":[{}]}}"#, text(topic), ids.join(","))
            })
            .collect();
        format!("[{}]", topics.join(","))
    };
    format!(
        r#"{{"producerId":{},"producerEpoch":{},"transactionTimeoutMs":{},"transactionStatus":{},"transactionPartitions":{partitions},"transactionLastUpdateTimestampMs":{},"transactionStartTimestampMs":{}}}"#,
        v.producer_id,
        v.producer_epoch,
        v.timeout_ms,
        v.state.id(),
        v.last_update_ms,
        v.start_ms
    )
}

/// ` key: ... payload: ...` for one record of `__transaction_state` at `offset`, or Kafka's
/// "Error at offset" text when it does not decode.
pub fn describe_record(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> String {
    let Some(key) = key else {
        return format!(" key: Error at offset {offset}, skipping. the record has no key");
    };
    match records::decode(key, value) {
        Ok(r) => {
            let key = format!(r#"{{"type":"0","data":{{"transactionalId":{}}}}}"#, text(&r.transactional_id));
            let payload = match &r.value {
                Some(v) => format!(r#"{{"version":"0","data":{}}}"#, value_json(v)),
                None => "<DELETE>".to_string(),
            };
            format!(" key: {key} payload: {payload}")
        }
        Err(e) => format!(" key: Error at offset {offset}, skipping. {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use strom_broker::txn::state::TxnState;

    #[test]
    fn records_print_as_kafkas_json() {
        let v = TxnLogValue {
            producer_id: 7,
            producer_epoch: 1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: BTreeMap::from([("orders".to_string(), vec![0, 1])]),
            last_update_ms: 20,
            start_ms: 10,
        };
        let line = describe_record(5, Some(&records::encode_key("t")), Some(&records::encode_value(&v)));
        assert_eq!(
            line,
            r#" key: {"type":"0","data":{"transactionalId":"t"}} payload: {"version":"0","data":{"producerId":7,"producerEpoch":1,"transactionTimeoutMs":60000,"transactionStatus":1,"transactionPartitions":[{"topic":"orders","partitionIds":[0,1]}],"transactionLastUpdateTimestampMs":20,"transactionStartTimestampMs":10}}"#
        );
        assert!(describe_record(6, Some(&records::encode_key("t")), None).ends_with("payload: <DELETE>"));
        assert!(describe_record(7, Some(b"xx"), None).contains("Error at offset 7"));
    }
}
