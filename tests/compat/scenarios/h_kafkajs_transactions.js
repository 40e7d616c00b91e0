// kafkajs 2.2.4 exactly-once: an idempotent producer writes each record once at dense offsets; a transactional
// producer commits and aborts, and read_committed consumers see only committed records while read_uncommitted
// ones see both (control markers never surface as messages); an open transaction holds read_committed readers
// back until it commits; consume-transform-produce with transaction.sendOffsets moves a group's offsets
// atomically with its output, across a deliberate abort; a second producer with the same transactionalId fences
// the first.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const B = process.env.BOOTSTRAP
const RUN = `${Math.floor(Date.now() / 1000)}-${process.pid}`
const T_IDEM = `kafkajs-idem-${RUN}`
const T_TXN = `kafkajs-txn-${RUN}`
const T_IN = `kafkajs-eos-in-${RUN}`
const T_OUT = `kafkajs-eos-out-${RUN}`
const T_FENCE = `kafkajs-fence-${RUN}`
const T_LSO = `kafkajs-lso-${RUN}`
const GROUP = `compat-kafkajs-eos-${RUN}`

let failed = 0
const ok = (name, msg) => console.log(`PASS kafkajs-txn ${name}: ${msg}`)
const bad = (name, msg) => {
  failed++
  console.log(`FAIL kafkajs-txn ${name}: ${msg}`)
}
const fail = msg => { throw new Error(msg) }

async function step(name, fn) {
  try {
    return (await fn()) ?? true
  } catch (e) {
    bad(name, e && e.stack ? `${e.type || ''} ${e.stack.split('\n').slice(0, 3).join(' | ')}` : String(e))
    return null
  }
}

async function waitFor(cond, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/**
 * Reads a topic from the start through a fresh group until `done(records)` holds; returns the records in delivery
 * order (per partition, offset order).
 */
async function readUntil(kafka, topic, done, what, { readUncommitted = false } = {}) {
  const consumer = kafka.consumer({ groupId: `compat-read-${RUN}-${Math.random().toString(36).slice(2)}`, readUncommitted, maxWaitTimeInMs: 100 })
  const got = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, offset: Number(message.offset), key: message.key && message.key.toString(), value: message.value.toString() })
      },
    })
    await waitFor(() => done(got), `${what} from ${topic} (have ${got.length} records)`)
  } finally {
    await consumer.disconnect()
  }
  return got
}

/**
 * Reads a whole topic until every partition has delivered its sentinel (the last record a scenario wrote there, in a
 * committed transaction), so everything before it has been delivered too.
 */
const readAll = (kafka, topic, partitions, { readUncommitted, sentinel = v => v.startsWith('sentinel') }) =>
  readUntil(kafka, topic, got => new Set(got.filter(r => sentinel(r.value)).map(r => r.partition)).size === partitions,
    `sentinels on all ${partitions} partitions`, { readUncommitted })

async function writeSentinels(producer, topic, partitions) {
  const txn = await producer.transaction()
  await txn.send({ topic, messages: Array.from({ length: partitions }, (_, p) => ({ partition: p, key: 's', value: `sentinel-${p}` })) })
  await txn.commit()
}

async function main() {
  const kafka = new Kafka({ clientId: 'compat-kafkajs-txn', brokers: [B], logLevel: logLevel.NOTHING, retry: { retries: 8 } })
  const admin = kafka.admin()
  await admin.connect()
  try {
    if (!await step('create-topics', async () => {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: T_IDEM, numPartitions: 3 }, { topic: T_TXN, numPartitions: 3 }, { topic: T_IN, numPartitions: 6 },
          { topic: T_OUT, numPartitions: 3 }, { topic: T_FENCE, numPartitions: 1 }, { topic: T_LSO, numPartitions: 1 },
        ],
      })
      ok('create-topics', `${T_IDEM}, ${T_TXN}, ${T_IN} (6 partitions), ${T_OUT}, ${T_FENCE}, ${T_LSO}`)
    })) return

    await step('idempotent', async () => {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
      await producer.connect()
      try {
        for (let b = 0; b < 20; b++) {
          const messages = Array.from({ length: 100 }, (_, i) => ({ key: `k${(b * 100 + i) % 30}`, value: `idem-${b * 100 + i}` }))
          const acks = await producer.send({ topic: T_IDEM, acks: -1, messages })
          const errors = acks.filter(a => a.errorCode !== 0)
          if (errors.length) fail(`error codes in acks: ${JSON.stringify(errors)}`)
        }
      } finally {
        await producer.disconnect()
      }
      const got = await readUntil(kafka, T_IDEM, rs => rs.length >= 2000, '2000 records')
      const values = new Set(got.map(r => r.value))
      if (got.length !== 2000 || values.size !== 2000) fail(`read ${got.length} records, ${values.size} distinct, expected 2000`)
      for (let p = 0; p < 3; p++) {
        const offsets = got.filter(r => r.partition === p).map(r => r.offset)
        if (offsets.some((o, i) => o !== i)) fail(`partition ${p} offsets are not 0..${offsets.length - 1}: ${offsets.slice(0, 10)}...`)
      }
      const watermarks = await admin.fetchTopicOffsets(T_IDEM)
      const total = watermarks.reduce((n, o) => n + Number(o.high), 0)
      if (total !== 2000) fail(`high watermarks sum to ${total}, expected 2000`)
      ok('idempotent', `2000 records in 20 sends, each exactly once at dense offsets; high watermarks ${watermarks.map(o => o.high)}`)
    })

    await step('commit-abort', async () => {
      const producer = kafka.producer({ transactionalId: `compat-kafkajs-ca-${RUN}`, idempotent: true, maxInFlightRequests: 1 })
      await producer.connect()
      try {
        const send = async (label, count, commit) => {
          const txn = await producer.transaction()
          await txn.send({ topic: T_TXN, messages: Array.from({ length: count }, (_, i) => ({ partition: i % 3, key: `k${i}`, value: `${label}-${i}` })) })
          await (commit ? txn.commit() : txn.abort())
        }
        await send('a', 300, true)
        await send('b', 200, false)
        await send('c', 100, true)
        await writeSentinels(producer, T_TXN, 3)
      } finally {
        await producer.disconnect()
      }
      const committed = await readAll(kafka, T_TXN, 3, { readUncommitted: false })
      const uncommitted = await readAll(kafka, T_TXN, 3, { readUncommitted: true })
      const count = (rs, prefix) => rs.filter(r => r.value.startsWith(prefix)).length
      if (count(committed, 'a-') !== 300 || count(committed, 'c-') !== 100 || count(committed, 'b-') !== 0) {
        fail(`read_committed saw a=${count(committed, 'a-')} b=${count(committed, 'b-')} c=${count(committed, 'c-')}, expected 300/0/100`)
      }
      if (count(uncommitted, 'a-') !== 300 || count(uncommitted, 'b-') !== 200 || count(uncommitted, 'c-') !== 100) {
        fail(`read_uncommitted saw a=${count(uncommitted, 'a-')} b=${count(uncommitted, 'b-')} c=${count(uncommitted, 'c-')}, expected 300/200/100`)
      }
      const strays = uncommitted.filter(r => !/^(a|b|c)-\d+$|^sentinel-\d$/.test(r.value))
      if (strays.length) fail(`read_uncommitted delivered records that were never produced (control markers?): ${JSON.stringify(strays.slice(0, 3))}`)
      // Four transactions (a, b, c and the sentinels) touched every partition; each left one control marker there.
      const watermarks = (await admin.fetchTopicOffsets(T_TXN)).sort((x, y) => x.partition - y.partition)
      for (const w of watermarks) {
        const data = uncommitted.filter(r => r.partition === w.partition)
        const expected = data.length + 4
        if (Number(w.high) !== expected) fail(`partition ${w.partition}: high watermark ${w.high}, expected ${data.length} records + 4 markers = ${expected}`)
      }
      ok('commit-abort', `read_committed: 300 + 100 committed, none of the 200 aborted; read_uncommitted: all 600, no control marker delivered; high watermarks ${watermarks.map(w => w.high)} = records + one marker per transaction`)
    })

    await step('lso-holds-back', async () => {
      const producer = kafka.producer({ transactionalId: `compat-kafkajs-lso-${RUN}`, idempotent: true, maxInFlightRequests: 1 })
      const plain = kafka.producer()
      await producer.connect()
      await plain.connect()
      const consumer = kafka.consumer({ groupId: `compat-lso-${RUN}`, maxWaitTimeInMs: 50 })
      const got = []
      let fetchesAfterBefore = 0
      try {
        const before = await producer.transaction()
        await before.send({ topic: T_LSO, messages: Array.from({ length: 5 }, (_, i) => ({ value: `before-${i}` })) })
        await before.commit()
        const open = await producer.transaction()
        await open.send({ topic: T_LSO, messages: Array.from({ length: 10 }, (_, i) => ({ value: `open-${i}` })) })
        await plain.send({ topic: T_LSO, acks: -1, messages: [{ value: 'plain-after' }] })

        consumer.on(consumer.events.FETCH, () => {
          if (got.length >= 5) fetchesAfterBefore++
        })
        await consumer.connect()
        await consumer.subscribe({ topics: [T_LSO], fromBeginning: true })
        await consumer.run({ autoCommit: false, eachMessage: async ({ message }) => { got.push({ offset: Number(message.offset), value: message.value.toString() }) } })
        // Five more fetch rounds after the committed records arrived: anything past the open transaction's start would have come.
        await waitFor(() => fetchesAfterBefore >= 5, 'five fetches after the committed records')
        if (got.length !== 5 || got.some((r, i) => r.value !== `before-${i}`)) {
          fail(`with the transaction open read_committed got ${JSON.stringify(got.map(r => r.value))}, expected before-0..4 only`)
        }
        await open.commit()
        await waitFor(() => got.length >= 16, 'the open transaction and the plain record after its commit')
        const values = got.map(r => r.value)
        const expected = [...Array.from({ length: 5 }, (_, i) => `before-${i}`), ...Array.from({ length: 10 }, (_, i) => `open-${i}`), 'plain-after']
        if (JSON.stringify(values) !== JSON.stringify(expected)) fail(`after the commit read_committed got ${JSON.stringify(values)}`)
        ok('lso-holds-back', `an open transaction held read_committed at 5 records over ${fetchesAfterBefore} fetches (a later non-transactional record too); its commit released all 11`)
      } finally {
        await consumer.disconnect()
        await plain.disconnect()
        await producer.disconnect()
      }
    })

    await step('consume-transform-produce', async () => {
      const N = 600
      const plain = kafka.producer()
      await plain.connect()
      try {
        await plain.send({ topic: T_IN, acks: -1, messages: Array.from({ length: N }, (_, i) => ({ key: `k${i % 60}`, value: `in-${i}` })) })
      } finally {
        await plain.disconnect()
      }
      const producer = kafka.producer({ transactionalId: `compat-kafkajs-eos-${RUN}`, idempotent: true, maxInFlightRequests: 1 })
      await producer.connect()
      const consumer = kafka.consumer({ groupId: GROUP, maxWaitTimeInMs: 100, maxBytesPerPartition: 2048 })
      let processed = 0
      let aborted = 0
      let batches = 0
      try {
        await consumer.connect()
        await consumer.subscribe({ topics: [T_IN], fromBeginning: true })
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, resolveOffset }) => {
            if (batch.messages.length === 0) return
            const outputs = batch.messages.map(m => ({ key: m.key, value: m.value.toString().replace('in-', 'out-') }))
            const next = String(Number(batch.lastOffset()) + 1)
            batches++
            if (batches === 2) {
              // The second batch's first attempt is thrown away: its outputs must never reach read_committed readers.
              const txn = await producer.transaction()
              await txn.send({ topic: T_OUT, messages: outputs.map(o => ({ ...o, value: `aborted-${o.value}` })) })
              await txn.sendOffsets({ consumerGroupId: GROUP, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] })
              await txn.abort()
              aborted += outputs.length
            }
            const txn = await producer.transaction()
            await txn.send({ topic: T_OUT, messages: outputs })
            await txn.sendOffsets({ consumerGroupId: GROUP, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] })
            await txn.commit()
            resolveOffset(batch.lastOffset())
            processed += outputs.length
          },
        })
        await waitFor(() => processed >= N, `${N} input records processed (have ${processed})`, 60000)
      } finally {
        await consumer.disconnect()
      }
      try {
        await writeSentinels(producer, T_OUT, 3)
      } finally {
        await producer.disconnect()
      }
      const out = (await readAll(kafka, T_OUT, 3, { readUncommitted: false })).filter(r => !r.value.startsWith('sentinel'))
      const values = out.map(r => r.value)
      if (values.some(v => v.startsWith('aborted-'))) fail(`read_committed delivered aborted outputs: ${values.filter(v => v.startsWith('aborted-')).slice(0, 3)}`)
      if (out.length !== N || new Set(values).size !== N) fail(`output holds ${out.length} records, ${new Set(values).size} distinct, expected ${N}`)
      const byKey = {}
      for (const r of out) (byKey[r.key] = byKey[r.key] || []).push(Number(r.value.slice(4)))
      for (const [key, seq] of Object.entries(byKey)) {
        if (seq.some((v, i) => i > 0 && v <= seq[i - 1])) fail(`key ${key} out of order: ${seq}`)
      }
      const ends = await admin.fetchTopicOffsets(T_IN)
      const [committed] = await admin.fetchOffsets({ groupId: GROUP, topics: [T_IN] })
      for (const e of ends) {
        const c = committed.partitions.find(p => p.partition === e.partition)
        if (!c || c.offset !== e.high) fail(`partition ${e.partition}: group committed ${c && c.offset}, end offset ${e.high}`)
      }
      if (aborted === 0) fail('no batch was aborted')
      ok('consume-transform-produce', `${N} inputs over ${batches} transactions (one aborted first, ${aborted} outputs thrown away) -> ${N} outputs exactly once, per-key order kept; group offsets = end offsets ${ends.map(e => e.high)}`)
    })

    await step('fencing', async () => {
      const id = `compat-kafkajs-fence-${RUN}`
      const zombie = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1, retry: { retries: 2 } })
      const successor = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 })
      await zombie.connect()
      try {
        const old = await zombie.transaction()
        await old.send({ topic: T_FENCE, messages: [{ value: 'zombie-1' }] })
        await successor.connect()
        const txn = await successor.transaction()
        await txn.send({ topic: T_FENCE, messages: [{ value: 'successor-1' }] })
        await txn.commit()
        let error = null
        try {
          await old.send({ topic: T_FENCE, messages: [{ value: 'zombie-2' }] })
          await old.commit()
        } catch (e) {
          error = e
        }
        if (!error) fail('the fenced producer committed')
        const code = error.type || (error.originalError && error.originalError.type) || error.name
        if (!/PRODUCER_FENCED|INVALID_PRODUCER_EPOCH|INVALID_TXN_STATE/.test(`${code} ${error.message}`)) fail(`the fenced producer failed with ${code}: ${error.message}`)
        await writeSentinels(successor, T_FENCE, 1)
        const seen = (await readAll(kafka, T_FENCE, 1, { readUncommitted: false, sentinel: v => v === 'sentinel-0' })).map(r => r.value)
        if (seen.some(v => v.startsWith('zombie'))) fail(`read_committed saw the zombie's records: ${seen}`)
        if (!seen.includes('successor-1')) fail(`read_committed lacks the successor's record: ${seen}`)
        ok('fencing', `after a second producer initialised the same transactionalId the first failed with ${code}; read_committed holds the successor's record and none of the zombie's`)
      } finally {
        await successor.disconnect()
        await zombie.disconnect()
      }
    })
  } finally {
    await admin.disconnect()
  }
  process.exitCode = failed ? 1 : 0
}

main().catch(e => {
  console.log(`FAIL kafkajs-txn scenario: ${e && e.stack}`)
  process.exit(1)
})
