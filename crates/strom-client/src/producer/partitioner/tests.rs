use super::*;
use std::collections::HashSet;

fn ctx<'a>(
    topic: &'a str,
    key: Option<&'a [u8]>,
    partition_count: i32,
    available: &'a [i32],
) -> PartitionerContext<'a> {
    PartitionerContext { topic, key, partition_count, available_partitions: available }
}

/// Apache Kafka's `UtilsTest.testMurmur2` (clients/src/test/java/org/apache/kafka/common/utils/
/// UtilsTest.java), values copied from the source.
#[test]
fn murmur2_matches_kafka_utils_test() {
    let cases: [(&[u8], i32); 6] = [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107), // Kafka writes this one as new byte[] {'a', 'b', 'c'}
    ];
    for (data, expected) in cases {
        assert_eq!(murmur2(data), expected, "murmur2({:?})", String::from_utf8_lossy(data));
    }
}

/// Hashes and partitions computed by Kafka's `Utils.murmur2` / `toPositive` run on a JVM
/// (OpenJDK 17), covering every tail length, an empty key, multi-byte UTF-8 and bytes >= 0x80
/// (where Java's signed `byte` needs the `& 0xff`).
#[test]
fn key_partitions_match_java() {
    const COUNTS: [i32; 7] = [1, 3, 6, 10, 12, 50, 100];
    let cases: [(&str, i32, [i32; 7]); 12] = [
        ("", 275646681, [0, 0, 3, 1, 9, 31, 81]),
        ("a", -1563381124, [0, 1, 4, 4, 4, 24, 24]),
        ("ab", 316155434, [0, 2, 2, 4, 2, 34, 34]),
        ("abc", 479470107, [0, 0, 3, 7, 3, 7, 7]),
        ("abcd", -1323649548, [0, 2, 2, 0, 8, 0, 0]),
        ("abcde", 461995741, [0, 1, 1, 1, 1, 41, 41]),
        ("21", -973932308, [0, 0, 0, 0, 0, 40, 40]),
        ("foobar", -790332482, [0, 0, 0, 6, 6, 16, 66]),
        ("user-42", 1459644460, [0, 1, 4, 0, 4, 10, 60]),
        ("order:2024-0001", -727428030, [0, 2, 2, 8, 2, 18, 18]),
        ("héllo wörld", 439213890, [0, 0, 0, 0, 6, 40, 90]),
        ("🦀 rust", 785123875, [0, 1, 1, 5, 7, 25, 75]),
    ];
    let default = DefaultPartitioner::new();
    for (key, hash, partitions) in cases {
        assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
        for (count, expected) in COUNTS.into_iter().zip(partitions) {
            assert_eq!(partition_for_key(key.as_bytes(), count), expected, "{key:?} over {count}");
            // Keys hash over all partitions even when only some are available, as in Java.
            let p = default.partition(&ctx("t", Some(key.as_bytes()), count, &[0]));
            assert_eq!(p, expected, "DefaultPartitioner {key:?} over {count}");
        }
    }
    let high = [0xff, 0x80, 0x7f, 0x00, 0xfe, 0x81, 0xc3];
    assert_eq!(murmur2(&high), 605892741);
    assert_eq!(partition_for_key(&high, 7), 6);
}

#[test]
fn to_positive_clears_the_sign_bit_only() {
    assert_eq!(to_positive(0), 0);
    assert_eq!(to_positive(42), 42);
    assert_eq!(to_positive(-1), i32::MAX);
    assert_eq!(to_positive(i32::MIN), 0);
    assert_eq!(to_positive(-790332482), 1357151166);
}

/// Drives `n` keyless records through `p` like the producer does: a batch holds `batch_len`
/// records, and a full batch triggers `on_new_batch`. Returns the partition of each batch.
fn keyless_batches(p: &dyn Partitioner, batches: usize, batch_len: usize, count: i32, available: &[i32]) -> Vec<i32> {
    let mut out = Vec::new();
    for _ in 0..batches {
        let first = p.partition(&ctx("t", None, count, available));
        for _ in 1..batch_len {
            assert_eq!(p.partition(&ctx("t", None, count, available)), first, "sticky within a batch");
        }
        p.on_new_batch("t", count, first);
        out.push(first);
    }
    out
}

#[test]
fn default_keyless_is_sticky_until_new_batch_then_moves() {
    for seed in 0..20 {
        let p = DefaultPartitioner::with_seed(seed);
        let batches = keyless_batches(&p, 200, 5, 6, &[]);
        for pair in batches.windows(2) {
            assert_ne!(pair[0], pair[1], "a new batch moves to another partition");
        }
        assert!(batches.iter().all(|b| (0..6).contains(b)));
        let used: HashSet<i32> = batches.into_iter().collect();
        assert_eq!(used.len(), 6, "all partitions get used over many batches");
    }
}

#[test]
fn sticky_chooses_only_available_partitions() {
    let available = [1, 4, 7];
    for seed in 0..20 {
        let p = DefaultPartitioner::with_seed(seed);
        let batches = keyless_batches(&p, 100, 3, 8, &available);
        for pair in batches.windows(2) {
            assert_ne!(pair[0], pair[1]);
        }
        let used: HashSet<i32> = batches.into_iter().collect();
        assert_eq!(used, available.into_iter().collect::<HashSet<_>>());
    }
    // A single available partition is the only choice, batch after batch.
    let p = DefaultPartitioner::new();
    assert_eq!(keyless_batches(&p, 10, 2, 8, &[5]), vec![5; 10]);
}

#[test]
fn stale_or_foreign_new_batch_notices_do_not_move_the_sticky_partition() {
    let p = DefaultPartitioner::with_seed(7);
    let first = p.partition(&ctx("t", None, 10, &[]));
    p.on_new_batch("t", 10, (first + 1) % 10); // a batch of another partition (e.g. keyed) filled
    p.on_new_batch("other", 10, first); // another topic
    assert_eq!(p.partition(&ctx("t", None, 10, &[])), first);
    // Keyed records do not disturb the keyless sticky partition.
    let _ = p.partition(&ctx("t", Some(b"k"), 10, &[]));
    assert_eq!(p.partition(&ctx("t", None, 10, &[])), first);
    // Two senders report the same full batch: the topic moves once.
    p.on_new_batch("t", 10, first);
    let second = p.partition(&ctx("t", None, 10, &[]));
    p.on_new_batch("t", 10, first);
    assert_ne!(second, first);
    assert_eq!(p.partition(&ctx("t", None, 10, &[])), second);
}

#[test]
fn sticky_state_is_per_topic() {
    let p = DefaultPartitioner::with_seed(3);
    let a = p.partition(&ctx("a", None, 50, &[]));
    let b = p.partition(&ctx("b", None, 50, &[]));
    p.on_new_batch("a", 50, a);
    assert_ne!(p.partition(&ctx("a", None, 50, &[])), a);
    assert_eq!(p.partition(&ctx("b", None, 50, &[])), b);
}

#[test]
fn uniform_sticky_ignores_keys() {
    let p = UniformStickyPartitioner::with_seed(11);
    let first = p.partition(&ctx("t", Some(b"x"), 12, &[]));
    for key in [&b"a"[..], b"foobar", b"21"] {
        assert_eq!(p.partition(&ctx("t", Some(key), 12, &[])), first);
    }
    assert_eq!(p.partition(&ctx("t", None, 12, &[])), first);
    let batches = keyless_batches(&p, 100, 2, 12, &[]);
    assert!(batches.windows(2).all(|w| w[0] != w[1]));
    assert_eq!(batches.into_iter().collect::<HashSet<_>>().len(), 12);
}

#[test]
fn round_robin_cycles_in_order() {
    let p = RoundRobinPartitioner::new();
    let all: Vec<i32> = (0..9).map(|i| p.partition(&ctx("t", Some(&[i as u8]), 4, &[]))).collect();
    assert_eq!(all, [0, 1, 2, 3, 0, 1, 2, 3, 0]);
    // Over the available partitions, in their order; the counter keeps running (9 → index 0).
    let avail: Vec<i32> = (0..4).map(|_| p.partition(&ctx("t", None, 6, &[2, 3, 5]))).collect();
    assert_eq!(avail, [2, 3, 5, 2]);
    // Counters are per topic, and on_new_batch does not disturb the rotation.
    p.on_new_batch("u", 3, 0);
    assert_eq!(p.partition(&ctx("u", None, 3, &[])), 0);
    assert_eq!(p.partition(&ctx("u", None, 3, &[])), 1);
}

#[test]
fn round_robin_counter_wraps_like_java() {
    let p = RoundRobinPartitioner::new();
    p.set_counter_for_tests("t", i32::MAX);
    // Java: toPositive(MAX) % 10 = 7, then the AtomicInteger wraps to MIN: toPositive(MIN) = 0.
    assert_eq!(p.partition(&ctx("t", None, 10, &[])), 7);
    assert_eq!(p.partition(&ctx("t", None, 10, &[])), 0);
    assert_eq!(p.partition(&ctx("t", None, 10, &[])), 1);
}

#[test]
fn random_stays_in_range_and_spreads() {
    let p = RandomPartitioner::with_seed(99);
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        let part = p.partition(&ctx("t", Some(b"ignored"), 7, &[]));
        assert!((0..7).contains(&part));
        seen.insert(part);
    }
    assert_eq!(seen.len(), 7);
    seen.clear();
    for _ in 0..1000 {
        let part = p.partition(&ctx("t", None, 7, &[0, 6]));
        seen.insert(part);
    }
    assert_eq!(seen, HashSet::from([0, 6]));
    assert!(RandomPartitioner::new().partition(&ctx("t", None, 1, &[])) == 0);
}

#[test]
fn random_sources_differ_between_instances() {
    let draws =
        |p: &RandomPartitioner| -> Vec<i32> { (0..32).map(|_| p.partition(&ctx("t", None, 1000, &[]))).collect() };
    assert_ne!(draws(&RandomPartitioner::new()), draws(&RandomPartitioner::new()));
}

#[test]
fn degenerate_partition_counts_do_not_panic() {
    for p in [partitioner_by_name("default"), partitioner_by_name("round_robin"), partitioner_by_name("random")] {
        let p = p.expect("built in");
        assert_eq!(p.partition(&ctx("t", Some(b"k"), 0, &[])), 0);
        assert_eq!(p.partition(&ctx("t", None, 0, &[])), 0);
    }
}

#[test]
fn partitioners_by_name() {
    let keyed = |name: &str| {
        let p = partitioner_by_name(name).unwrap_or_else(|| panic!("{name} should be known"));
        p.partition(&ctx("t", Some(b"foobar"), 10, &[]))
    };
    for name in
        ["default", "murmur2_random", "org.apache.kafka.clients.producer.internals.DefaultPartitioner", " Default "]
    {
        assert_eq!(keyed(name), 6, "{name}");
    }
    for name in ["round_robin", "roundrobin", "round-robin", "org.apache.kafka.clients.producer.RoundRobinPartitioner"]
    {
        // A fresh round-robin partitioner starts at partition 0 regardless of key.
        assert_eq!(keyed(name), 0, "{name}");
    }
    for name in ["random", "uniform_sticky", "org.apache.kafka.clients.producer.UniformStickyPartitioner"] {
        assert!((0..10).contains(&keyed(name)), "{name}");
    }
    for name in ["", "murmur2", "consistent_random", "org.example.MyPartitioner"] {
        assert!(partitioner_by_name(name).is_none(), "{name:?} should be unknown");
    }
}
