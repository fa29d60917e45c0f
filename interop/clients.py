"""Produce and consume with keys and headers through a Python Kafka client against Strom.

Usage: clients.py kafka-python|confluent-kafka|kafka-python-group|confluent-kafka-group HOST:PORT
"""
import os
import sys
import time
import uuid

N = 1000
# The interop run against a 3-node cluster creates its topics with three replicas.
RF = int(os.environ.get("STROM_INTEROP_RF", "1"))


def expected(i):
    return (f"key-{i}".encode(), f"value-{i}".encode(), [("seq", str(i).encode()), ("lib", b"py")])


def check(got):
    assert len(got) == N, f"consumed {len(got)} of {N}"
    for i, (k, v, h) in enumerate(got):
        ek, ev, eh = expected(i)
        assert (k, v) == (ek, ev), f"message {i}: {(k, v)} != {(ek, ev)}"
        assert list(h) == eh, f"message {i}: headers {h} != {eh}"


def with_kafka_python(bootstrap, topic):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=RF)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip")
    for i in range(N):
        k, v, h = expected(i)
        producer.send(topic, key=k, value=v, headers=h)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=10000)
    got = []
    for m in consumer:
        got.append((m.key, m.value, [(hk, hv) for hk, hv in m.headers]))
        if len(got) == N:
            break
    consumer.close()
    check(got)


def group_with_kafka_python(bootstrap, topic):
    """A KafkaConsumer in a group consumes everything and commits; a second one resumes there."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(N):
        producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode())
    producer.flush()
    producer.close()
    group = f"{topic}-group"
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=15000)
    seen = 0
    for _ in consumer:
        seen += 1
        if seen == N:
            break
    assert seen == N, f"group consumer got {seen} of {N}"
    consumer.commit()
    tp = TopicPartition(topic, 0)
    committed = consumer.committed(tp)
    assert committed == N, f"committed {committed}, expected {N}"
    consumer.close()


def group_with_confluent_kafka(bootstrap, topic):
    """A confluent-kafka Consumer in a group consumes everything and commits synchronously."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(N):
        producer.produce(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode())
    assert producer.flush(30) == 0
    group = f"{topic}-group"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen, deadline = 0, time.time() + 30
    while seen < N and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        seen += 1
    assert seen == N, f"group consumer got {seen} of {N}"
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    assert committed == N, f"committed {committed}, expected {N}"
    consumer.close()


def with_confluent_kafka(bootstrap, topic):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=RF)]).values():
        f.result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "zstd"})
    for i in range(N):
        k, v, h = expected(i)
        producer.produce(topic, key=k, value=v, headers=h)
    assert producer.flush(30) == 0, "undelivered messages"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-unused",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got, deadline = [], time.time() + 20
    while len(got) < N and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got.append((m.key(), m.value(), m.headers() or []))
    consumer.close()
    check(got)


if __name__ == "__main__":
    lib, bootstrap = sys.argv[1], sys.argv[2]
    topic = f"{lib}-{uuid.uuid4().hex[:8]}"
    {
        "kafka-python": with_kafka_python,
        "confluent-kafka": with_confluent_kafka,
        "kafka-python-group": group_with_kafka_python,
        "confluent-kafka-group": group_with_confluent_kafka,
    }[lib](bootstrap, topic)
    print(f"{lib}: produced and consumed {N} messages with keys and headers")
