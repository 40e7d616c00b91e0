// kafkajs 2.2.4 (npm, tests/compat/node_modules): admin.createTopics (3 partitions), producer.send of
// 10,000 keyed records with headers and explicit timestamps in batches, admin.fetchTopicOffsets and
// admin.fetchTopicOffsetsByTimestamp, an exact read-back through kafkajs' own Fetch request and record
// decoder (group-less, via the client's cluster object), and a consumer-group read-back.
//
// The consumer-group read-back runs by default; COMPAT_KAFKAJS_GROUPS=0 skips it (for brokers without groups).
'use strict'

const GROUPS_ENABLED = process.env.COMPAT_KAFKAJS_GROUPS !== '0'

const { Kafka, logLevel, Partitioners } = require('kafkajs')

const B = process.env.BOOTSTRAP
const N = 10000
const HALF = 5000
const PARTS = 3
const BATCH = 500
const TOPIC = `kafkajs-${Math.floor(Date.now() / 1000)}-${process.pid}`
const BASE_TS = Math.floor((Date.now() - 10800000) / 1000) * 1000

let failed = 0
const ok = (name, msg) => console.log(`PASS kafkajs ${name}: ${msg}`)
const bad = (name, msg) => {
  failed++
  console.log(`FAIL kafkajs ${name}: ${msg}`)
}
const skip = (name, msg) => console.log(`SKIP kafkajs ${name}: ${msg}`)

function record(i) {
  const key = Buffer.from(`key-${String(i).padStart(5, '0')}`)
  let value
  if (i % 1000 === 7) {
    value = Buffer.alloc(0)
  } else {
    const tail = Buffer.alloc((i % 200) * (1 + (i % 3)))
    for (let j = 0; j < tail.length; j++) tail[j] = (i + j * 7) & 0xff
    value = Buffer.concat([Buffer.from(`value ${i} `), tail])
  }
  const headers = { h1: Buffer.from('v1'), idx: Buffer.from(String(i)), dup: [Buffer.from('a'), Buffer.from('b')] }
  if (i % 10 === 3) headers.empty = Buffer.alloc(0)
  return { key, value, headers, timestamp: String(BASE_TS + i) }
}

// Normalizes decoded headers ({name: Buffer | Buffer[]}) to [[name, hex], ...] for exact comparison.
function headerList(headers) {
  const out = []
  for (const [name, v] of Object.entries(headers || {})) {
    for (const b of Array.isArray(v) ? v : [v]) out.push([name, b == null ? null : Buffer.from(b).toString('hex')])
  }
  return out
}

function sameRecord(i, m) {
  const exp = record(i)
  const key = m.key == null ? null : Buffer.from(m.key)
  const value = m.value == null ? null : Buffer.from(m.value)
  if (key == null || !key.equals(exp.key)) return `key ${key && key.toString()} expected ${exp.key.toString()}`
  if (value == null || !value.equals(exp.value)) return `value ${value && value.toString('hex').slice(0, 80)} (${value && value.length} B) expected ${exp.value.toString('hex').slice(0, 80)} (${exp.value.length} B)`
  const gh = JSON.stringify(headerList(m.headers))
  const eh = JSON.stringify(headerList(exp.headers))
  if (gh !== eh) return `headers ${gh} expected ${eh}`
  if (String(m.timestamp) !== exp.timestamp) return `timestamp ${m.timestamp} expected ${exp.timestamp}`
  return null
}

class CheckError extends Error {}
const fail = msg => {
  throw new CheckError(msg)
}

async function step(name, fn) {
  try {
    return await fn()
  } catch (e) {
    bad(name, `${e && e.name}: ${e && e.message}`)
    if (!(e instanceof CheckError) && e && e.stack) console.log(e.stack)
    return undefined
  }
}

async function main() {
  const kafka = new Kafka({
    clientId: 'compat-kafkajs',
    brokers: [B],
    logLevel: logLevel.ERROR,
    connectionTimeout: 10000,
    requestTimeout: 30000,
    retry: { retries: 3 },
  })
  const admin = kafka.admin()

  const created = await step('create-topic', async () => {
    await admin.connect()
    const res = await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: PARTS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 30000,
    })
    if (res !== true) fail(`createTopics returned ${res}`)
    const md = await admin.fetchTopicMetadata({ topics: [TOPIC] })
    const ids = md.topics[0].partitions.map(p => p.partitionId).sort()
    if (JSON.stringify(ids) !== JSON.stringify([...Array(PARTS).keys()])) fail(`metadata partitions ${ids}`)
    ok('create-topic', `${TOPIC} created with ${PARTS} partitions, leaders ${md.topics[0].partitions.map(p => p.leader)}`)
    return true
  })
  if (!created) return finish(admin)

  // The partition of each record: kafkajs' own default (Java-compatible murmur2) partitioner, applied
  // here so the expected offset of every record is known; sends are sequential, so per-partition
  // offsets follow produce order.
  const partitioner = Partitioners.DefaultPartitioner()
  const partitionMetadata = [...Array(PARTS).keys()].map(id => ({ partitionId: id, leader: 0 }))
  const placed = []
  const produced = await step('produce', async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: false })
    await producer.connect()
    const next = new Array(PARTS).fill(0)
    const t0 = Date.now()
    try {
      for (let start = 0; start < N; start += BATCH) {
        const messages = []
        const firstInBatch = new Map()
        for (let i = start; i < Math.min(N, start + BATCH); i++) {
          const r = record(i)
          const partition = partitioner({ topic: TOPIC, partitionMetadata, message: r })
          if (!firstInBatch.has(partition)) firstInBatch.set(partition, next[partition])
          placed[i] = [partition, next[partition]++]
          messages.push({ ...r, partition })
        }
        const res = await producer.send({ topic: TOPIC, messages, acks: -1, timeout: 30000 })
        for (const md of res) {
          if (md.errorCode !== 0) fail(`batch at #${start}: partition ${md.partition} error ${md.errorCode}`)
          if (String(md.baseOffset) !== String(firstInBatch.get(md.partition))) {
            fail(`batch at #${start}: partition ${md.partition} baseOffset ${md.baseOffset}, expected ${firstInBatch.get(md.partition)}`)
          }
        }
        if (res.length !== firstInBatch.size) fail(`batch at #${start}: ${res.length} partition results, expected ${firstInBatch.size}`)
      }
    } finally {
      await producer.disconnect()
    }
    ok('produce', `${N} records in ${N / BATCH} sends acked at the expected base offsets in ${Date.now() - t0} ms, per partition ${JSON.stringify(next)}`)
    return next
  })
  if (!produced) return finish(admin)

  await step('fetch-topic-offsets', async () => {
    const offs = await admin.fetchTopicOffsets(TOPIC)
    const got = offs.map(o => [o.partition, String(o.low), String(o.high)]).sort((a, b) => a[0] - b[0])
    const exp = produced.map((n, p) => [p, '0', String(n)])
    const total = offs.reduce((s, o) => s + Number(o.high), 0)
    if (JSON.stringify(got) !== JSON.stringify(exp) || total !== N) fail(`got ${JSON.stringify(got)}, expected ${JSON.stringify(exp)} (sum ${N})`)
    ok('fetch-topic-offsets', `[partition, low, high]: ${JSON.stringify(got)}, high watermarks sum to ${total}`)
  })

  const cases = [
    ['offsets-by-timestamp-mid', BASE_TS + HALF, i => i >= HALF],
    ['offsets-by-timestamp-odd', BASE_TS + 4321, i => i >= 4321],
    ['offsets-by-timestamp-zero', 0, () => true],
    // No record at or after the timestamp: the broker answers -1 and kafkajs substitutes the high watermark.
    ['offsets-by-timestamp-future', BASE_TS + N + 60000, () => false],
  ]
  for (const [name, ts, pred] of cases) {
    await step(name, async () => {
      const exp = produced.map((n, p) => {
        for (let i = 0; i < N; i++) if (placed[i][0] === p && pred(i)) return [p, String(placed[i][1])]
        return [p, String(n)]
      })
      const res = await admin.fetchTopicOffsetsByTimestamp(TOPIC, ts)
      const got = res.map(o => [o.partition, String(o.offset)]).sort((a, b) => a[0] - b[0])
      if (JSON.stringify(got) !== JSON.stringify(exp)) fail(`timestamp ${ts}: got ${JSON.stringify(got)}, expected ${JSON.stringify(exp)}`)
      ok(name, `timestamp ${ts}: ${JSON.stringify(got)}`)
    })
  }

  await step('read-back-fetch', () => readBackWithoutGroup(kafka, placed, produced))

  if (GROUPS_ENABLED) {
    await step('read-back-group', () => readBackWithGroup(kafka, placed))
  } else {
    skip('read-back-group', 'COMPAT_KAFKAJS_GROUPS=0')
  }
  return finish(admin)
}

function compareAll(name, placed, got) {
  if (got.size !== N) fail(`read ${got.size} records, expected ${N}`)
  for (let i = 0; i < N; i++) {
    const [p, o] = placed[i]
    const m = got.get(`${p}/${o}`)
    if (!m) fail(`record #${i} missing at ${p}/${o}`)
    const diff = sameRecord(i, m)
    if (diff) fail(`record #${i} at ${p}/${o}: ${diff}`)
  }
  ok(name, `${N} records identical (key, value, headers incl. duplicate names and empty values, timestamp) at their expected offsets`)
}

// Group-less read: kafkajs has no public assign()-style consumer, so this drives the client's own
// cluster object (the one its consumer uses) and issues Fetch requests, decoded by kafkajs.
async function readBackWithoutGroup(kafka, placed, produced) {
  const createCluster = kafka[Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')]
  if (typeof createCluster !== 'function') fail('kafkajs internals changed: no createCluster')
  const cluster = createCluster({ allowAutoTopicCreation: false })
  await cluster.connect()
  try {
    await cluster.addTargetTopic(TOPIC)
    await cluster.refreshMetadata()
    const got = new Map()
    const next = new Array(PARTS).fill(0)
    const deadline = Date.now() + 60000
    while (next.some((o, p) => o < produced[p]) && Date.now() < deadline) {
      const pending = [...Array(PARTS).keys()].filter(p => next[p] < produced[p])
      const byLeader = cluster.findLeaderForPartitions(TOPIC, pending)
      for (const [nodeId, partitions] of Object.entries(byLeader)) {
        const broker = await cluster.findBroker({ nodeId })
        const res = await broker.fetch({
          replicaId: -1,
          isolationLevel: 1,
          maxWaitTime: 100,
          minBytes: 1,
          maxBytes: 4 << 20,
          topics: [{ topic: TOPIC, partitions: partitions.map(p => ({ partition: p, fetchOffset: String(next[p]), maxBytes: 1 << 20 })) }],
        })
        for (const t of res.responses) {
          for (const part of t.partitions) {
            if (part.errorCode !== 0) fail(`fetch ${t.topicName}/${part.partition} error ${part.errorCode}`)
            if (String(part.highWatermark) !== String(produced[part.partition])) {
              fail(`fetch ${part.partition}: highWatermark ${part.highWatermark}, expected ${produced[part.partition]}`)
            }
            for (const m of part.messages) {
              const off = Number(m.offset)
              if (off < next[part.partition]) continue // a batch may start before the fetch offset
              if (m.isControlRecord) fail(`unexpected control record at ${part.partition}/${off}`)
              if (off !== next[part.partition]) fail(`partition ${part.partition}: offset ${off} after ${next[part.partition] - 1} (gap)`)
              got.set(`${part.partition}/${off}`, m)
              next[part.partition] = off + 1
            }
          }
        }
      }
    }
    compareAll('read-back-fetch', placed, got)
  } finally {
    await cluster.disconnect()
  }
}

async function readBackWithGroup(kafka, placed) {
  const consumer = kafka.consumer({ groupId: `compat-kafkajs-${process.pid}`, maxWaitTimeInMs: 100 })
  await consumer.connect()
  const got = new Map()
  let duplicate = null
  try {
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
    let resolveDone
    let crash = null
    const done = new Promise(resolve => { resolveDone = resolve })
    consumer.on(consumer.events.CRASH, e => {
      crash = e.payload && e.payload.error
      resolveDone()
    })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const k = `${partition}/${message.offset}`
        if (got.has(k) && !duplicate) duplicate = k
        got.set(k, message)
        if (got.size >= N) resolveDone()
      },
    })
    await Promise.race([done, new Promise(resolve => setTimeout(resolve, 60000))])
    if (crash) fail(`consumer crashed after ${got.size} records: ${crash.name}: ${crash.message}`)
  } finally {
    await consumer.disconnect()
  }
  if (duplicate) fail(`offset ${duplicate} delivered twice`)
  compareAll('read-back-group', placed, got)
}

async function finish(admin) {
  try {
    await admin.disconnect()
  } catch (e) {
    // ignore
  }
}

main()
  .catch(e => bad('scenario', `${e && e.stack}`))
  .finally(() => process.exit(failed ? 1 : 0))
