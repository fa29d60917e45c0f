//! Strom's codec against kafka-protocol, for every message and every version both define: a
//! random valid message encoded by Strom is decoded by kafka-protocol, whose re-encoding must be
//! the same bytes, which Strom must decode back to the message it started from. So each side
//! decodes what the other encodes, and both agree on every byte.

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::{Decodable as KDecodable, Encodable as KEncodable, Message as KMessage};
use strom_protocol::codec::{Decodable, Encodable, Message};
use strom_protocol::testing::{Random, Rng};

const CASES_PER_VERSION: u64 = 60;

fn check<S, K>(name: &str) -> usize
where
    S: Encodable + Decodable + Random + Message + PartialEq + std::fmt::Debug,
    K: KEncodable + KDecodable + KMessage,
{
    let lo = S::VERSIONS.0.max(K::VERSIONS.min);
    let hi = S::VERSIONS.1.min(K::VERSIONS.max);
    assert!(lo <= hi, "{name}: no version in common (Strom {:?}, kafka-protocol {:?})", S::VERSIONS, K::VERSIONS);
    let mut checked = 0;
    for version in lo..=hi {
        for seed in 0..CASES_PER_VERSION {
            let mut rng = Rng::new(seed + 1000 * version as u64);
            let message = S::random(&mut rng, version);
            let mut ours = BytesMut::new();
            message.encode(&mut ours, version).unwrap_or_else(|e| panic!("{name} v{version} seed {seed}: encode: {e}"));
            assert_eq!(message.compute_size(version).expect("size"), ours.len(), "{name} v{version}: compute_size");
            let mut input = ours.clone().freeze();
            let theirs = K::decode(&mut input, version).unwrap_or_else(|e| {
                panic!("{name} v{version} seed {seed}: kafka-protocol cannot decode {message:?}: {e}")
            });
            assert!(input.is_empty(), "{name} v{version} seed {seed}: kafka-protocol left {} bytes", input.len());
            let mut again = BytesMut::new();
            theirs.encode(&mut again, version).expect("kafka-protocol re-encodes");
            assert_eq!(
                &again[..],
                &ours[..],
                "{name} v{version} seed {seed}: kafka-protocol's bytes differ from Strom's for {message:?}"
            );
            let mut back: Bytes = again.freeze();
            let decoded = S::decode(&mut back, version).unwrap_or_else(|e| {
                panic!("{name} v{version} seed {seed}: Strom cannot decode kafka-protocol's bytes: {e}")
            });
            assert!(back.is_empty(), "{name} v{version} seed {seed}: Strom left {} bytes", back.len());
            assert_eq!(decoded, message, "{name} v{version} seed {seed}");
            checked += 1;
        }
    }
    checked
}

macro_rules! every_message {
    ($(($name:ident, $module:ident)),* $(,)?) => {
        #[test]
        fn strom_and_kafka_protocol_agree_on_every_message_and_version() {
            let mut total = 0;
            $(
                total += check::<strom_protocol::messages::$name, kafka_protocol::messages::$name>(stringify!($name));
            )*
            assert!(total > 10_000, "only {total} cases ran");
        }
    };
}

strom_protocol::for_each_message!(every_message);

/// Where the two disagree, Strom follows Java's client (the exception's superclass in Kafka's
/// source): these are `RetriableException`s there, which kafka-protocol does not mark.
const RETRIABLE_IN_JAVA_ONLY: &[&str] = &["CONCURRENT_TRANSACTIONS"];

#[test]
fn error_codes_and_retriability_match_kafka_protocol() {
    let mut differ = Vec::new();
    for e in strom_protocol::ResponseError::ALL {
        let theirs = kafka_protocol::ResponseError::try_from_code(e.code());
        let theirs = theirs.unwrap_or_else(|| panic!("kafka-protocol does not know {} ({})", e.name(), e.code()));
        if e.is_retriable() != theirs.is_retriable() {
            differ.push(e.name());
        }
    }
    assert_eq!(differ, RETRIABLE_IN_JAVA_ONLY);
}

/// The random messages are not trivial: across seeds they fill nested arrays, nulls, tagged
/// fields and unknown tagged fields, so the agreement above covers those encodings.
#[test]
fn random_messages_exercise_nested_nullable_and_tagged_fields() {
    use strom_protocol::messages::{ApiVersionsResponse, FetchResponse, MetadataRequest};
    let mut nested = 0;
    let mut nulls = 0;
    let mut tagged = 0;
    let mut unknown = 0;
    for seed in 0..200 {
        let fetch = FetchResponse::random(&mut Rng::new(seed), 13);
        nested += fetch.responses.iter().any(|t| !t.partitions.is_empty()) as u32;
        unknown += !fetch.unknown_tagged_fields.is_empty() as u32;
        nulls += MetadataRequest::random(&mut Rng::new(seed), 12).topics.is_none() as u32;
        tagged += !ApiVersionsResponse::random(&mut Rng::new(seed), 3).supported_features.is_empty() as u32;
    }
    for (what, n) in [("nested", nested), ("null", nulls), ("tagged", tagged), ("unknown tagged", unknown)] {
        assert!(n >= 10, "{what}: only {n} of 200");
    }
}
