// kafkajs against Strom: admin (create, list, describe topics, committed offsets), an idempotent
// gzip producer with keys and headers, and a consumer group that reads everything back in order.
// Usage: node clients.js HOST:PORT
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const N = 1000;
const PARTITIONS = 3;

async function main(bootstrap) {
  const kafka = new Kafka({ clientId: 'strom-interop', brokers: [bootstrap], logLevel: logLevel.ERROR });
  const topic = `kafkajs-${Date.now()}`;
  const groupId = `${topic}-group`;

  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  if (!created) throw new Error('createTopics returned false');
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) throw new Error(`listTopics lacks ${topic}: ${topics}`);
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  if (meta.topics[0].partitions.length !== PARTITIONS) throw new Error(`metadata: ${JSON.stringify(meta)}`);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < N; i++) {
    messages.push({ key: `key-${i % 50}`, value: `value-${i}`, headers: { seq: String(i), lib: 'kafkajs' } });
  }
  const acks = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
  if (acks.length === 0 || acks.some((a) => a.errorCode !== 0)) throw new Error(`produce: ${JSON.stringify(acks)}`);
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got = [];
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${got.length} of ${N} in 30 s`)), 30000);
    consumer.run({
      autoCommit: true,
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, offset: Number(message.offset), key: message.key.toString(),
          value: message.value.toString(), seq: Number(message.headers.seq.toString()),
          lib: message.headers.lib.toString() });
        if (got.length === N) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await done;
  await consumer.disconnect();

  // Every message once, intact, each key on one partition, sequence order kept per partition.
  const seen = new Set();
  const keyPartition = new Map();
  const lastSeq = new Map();
  for (const m of got) {
    if (m.value !== `value-${m.seq}` || m.key !== `key-${m.seq % 50}` || m.lib !== 'kafkajs') {
      throw new Error(`corrupt message ${JSON.stringify(m)}`);
    }
    if (seen.has(m.seq)) throw new Error(`duplicate ${m.seq}`);
    seen.add(m.seq);
    if (keyPartition.has(m.key) && keyPartition.get(m.key) !== m.partition) throw new Error(`key ${m.key} split`);
    keyPartition.set(m.key, m.partition);
    if ((lastSeq.get(m.partition) ?? -1) >= m.seq) throw new Error(`order broken in partition ${m.partition}`);
    lastSeq.set(m.partition, m.seq);
  }
  if (lastSeq.size < 2) throw new Error('keys did not spread over partitions');

  // The group's committed offsets (auto commit on disconnect) add up to everything consumed.
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  const committed = offsets[0].partitions.reduce((sum, p) => sum + Number(p.offset), 0);
  if (committed !== N) throw new Error(`committed offsets sum to ${committed}, expected ${N}`);
  const groups = await admin.listGroups();
  if (!groups.groups.some((g) => g.groupId === groupId)) throw new Error(`listGroups lacks ${groupId}`);
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  console.log(`kafkajs: ${N} messages over ${lastSeq.size} partitions, group ${groupId} committed ${committed}`);
}

main(process.argv[2]).catch((e) => {
  console.error(e);
  process.exit(1);
});
