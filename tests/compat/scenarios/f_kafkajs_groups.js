// kafkajs 2.2.4 consumer groups: two consumers in one group share 6 partitions and every record reaches
// exactly one of them; committed offsets resume a new member; admin.fetchOffsets / setOffsets / resetOffsets,
// listGroups, describeGroups and deleteGroups.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const B = process.env.BOOTSTRAP
const PARTS = 6
const N = 600
const TOPIC = `kafkajs-groups-${Math.floor(Date.now() / 1000)}-${process.pid}`
const GROUP = `compat-kafkajs-groups-${process.pid}`

let failed = 0
const ok = (name, msg) => console.log(`PASS kafkajs-groups ${name}: ${msg}`)
const bad = (name, msg) => {
  failed++
  console.log(`FAIL kafkajs-groups ${name}: ${msg}`)
}
const fail = msg => { throw new Error(msg) }

async function step(name, fn) {
  try {
    return (await fn()) ?? true
  } catch (e) {
    bad(name, e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : String(e))
    return null
  }
}

async function waitFor(cond, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

function member(kafka, name, assigned, got) {
  const consumer = kafka.consumer({ groupId: GROUP, maxWaitTimeInMs: 100, heartbeatInterval: 500, sessionTimeout: 10000, rebalanceTimeout: 20000 })
  consumer.on(consumer.events.GROUP_JOIN, e => {
    assigned[name] = (e.payload.memberAssignment[TOPIC] || []).slice()
  })
  return {
    consumer,
    async start() {
      await consumer.connect()
      await consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          got.push({ member: name, partition, offset: Number(message.offset), key: message.key.toString() })
          if (Number(message.offset) === 49) {
            await consumer.commitOffsets([{ topic: TOPIC, partition, offset: '50' }])
          }
        },
      })
    },
  }
}

async function main() {
  const kafka = new Kafka({ clientId: 'compat-kafkajs-groups', brokers: [B], logLevel: logLevel.NOTHING, retry: { retries: 8 } })
  const admin = kafka.admin()
  await admin.connect()
  try {
    if (!await step('create-topic', () => admin.createTopics({ waitForLeaders: true, topics: [{ topic: TOPIC, numPartitions: PARTS }] }))) return

    const assigned = {}
    const got = []
    const members = [member(kafka, 'a', assigned, got), member(kafka, 'b', assigned, got)]
    const shared = await step('join', async () => {
      await Promise.all(members.map(m => m.start()))
      await waitFor(() => {
        const all = Object.values(assigned).flat()
        return Object.keys(assigned).length === 2 && all.length === PARTS && new Set(all).size === PARTS &&
          Object.values(assigned).every(a => a.length === PARTS / 2)
      }, 'two members with three partitions each')
      ok('join', `two members share ${PARTS} partitions: ${JSON.stringify(assigned)}`)
    })
    if (!shared) return

    await step('exactly-once-per-group', async () => {
      const producer = kafka.producer()
      await producer.connect()
      const messages = []
      for (let i = 0; i < N; i++) messages.push({ key: `k${i}`, value: `v${i}`, partition: i % PARTS })
      await producer.send({ topic: TOPIC, messages })
      await producer.disconnect()
      await waitFor(() => got.length >= N, `${N} records`)
      const keys = new Set(got.map(r => r.key))
      if (got.length !== N || keys.size !== N) fail(`${got.length} records, ${keys.size} distinct`)
      const owners = {}
      for (const r of got) (owners[r.partition] = owners[r.partition] || new Set()).add(r.member)
      if (Object.values(owners).some(o => o.size !== 1)) fail('a partition was read by two members')
      ok('exactly-once-per-group', `${N} records, each delivered to exactly one member`)
    })
    await Promise.all(members.map(m => m.consumer.disconnect()))

    await step('fetch-offsets', async () => {
      const offsets = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] })
      const partitions = offsets[0].partitions.sort((x, y) => x.partition - y.partition)
      if (partitions.length !== PARTS || partitions.some(p => p.offset !== '50')) fail(`offsets ${JSON.stringify(partitions)}`)
      ok('fetch-offsets', 'every partition committed at 50')
    })

    await step('resume', async () => {
      const rest = []
      const late = member(kafka, 'c', {}, rest)
      await late.start()
      await waitFor(() => rest.length >= N - PARTS * 50, 'the uncommitted half')
      await late.consumer.disconnect()
      if (rest.some(r => r.offset < 50)) fail('a record below the committed offset was delivered again')
      ok('resume', `a new member resumed at the committed offsets and read the other ${rest.length} records`)
    })

    await step('set-and-reset-offsets', async () => {
      const at = async partition => (await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] }))[0].partitions.find(p => p.partition === partition).offset
      await admin.setOffsets({ groupId: GROUP, topic: TOPIC, partitions: [{ partition: 0, offset: '7' }] })
      if (await at(0) !== '7') fail(`after setOffsets partition 0 is at ${await at(0)}, expected 7`)
      // kafkajs commits the logical offset (-1 latest, -2 earliest) and lets the consumer resolve it.
      await admin.resetOffsets({ groupId: GROUP, topic: TOPIC, earliest: true })
      if (await at(1) !== '-2') fail(`after resetOffsets partition 1 is at ${await at(1)}, expected -2`)
      ok('set-and-reset-offsets', 'setOffsets (7) and resetOffsets (earliest, -2) committed through the admin client')
    })

    await step('list-describe-delete', async () => {
      const listed = await admin.listGroups()
      if (!listed.groups.some(g => g.groupId === GROUP && g.protocolType === 'consumer')) fail(`not listed: ${JSON.stringify(listed)}`)
      const described = await admin.describeGroups([GROUP])
      if (described.groups[0].state !== 'Empty') fail(`state ${described.groups[0].state}`)
      await admin.deleteGroups([GROUP])
      const after = await admin.listGroups()
      if (after.groups.some(g => g.groupId === GROUP)) fail('deleted group still listed')
      ok('list-describe-delete', 'listGroups, describeGroups (Empty) and deleteGroups')
    })
  } finally {
    await admin.disconnect()
  }
}

main()
  .catch(e => bad('crash', String(e)))
  .finally(() => process.exit(failed ? 1 : 0))
