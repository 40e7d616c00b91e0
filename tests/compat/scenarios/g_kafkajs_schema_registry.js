// @kafkajs/confluent-schema-registry 4.1.0 (npm) against Tributary's built-in schema registry: registers Avro,
// JSON Schema and Protobuf schemas (one importing another registered .proto by reference), evolves the Avro one, sees a breaking change refused with HTTP 409, and
// produces registry-encoded records with kafkajs and decodes what it consumes back.
//
// The registry listens where `tributary serve` puts it by default (port 8081 on all interfaces); set
// SCHEMA_REGISTRY_URL to point elsewhere.
'use strict'

const { Kafka, logLevel, Partitioners } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

const B = process.env.BOOTSTRAP
const registryUrl = require('../tools/registry_url')
const URL = registryUrl()
const RUN = `${Math.floor(Date.now() / 1000)}-${process.pid}`
const TOPIC = `sr-kafkajs-${RUN}`

let failed = 0
const ok = (name, msg) => console.log(`PASS schema-registry ${name}: ${msg}`)
const bad = (name, msg) => {
  failed++
  console.log(`FAIL schema-registry ${name}: ${msg}`)
}

async function check(name, fn) {
  try {
    const detail = await fn()
    ok(name, detail)
  } catch (e) {
    bad(name, e && e.message ? e.message.split('\n')[0] : String(e))
  }
}

const avroV1 = { type: 'record', name: 'Payment', namespace: 'compat', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'double' }] }
const avroV2 = { ...avroV1, fields: [...avroV1.fields, { name: 'currency', type: 'string', default: 'EUR' }] }
const avroBreaking = { ...avroV1, fields: [{ name: 'id', type: 'long' }, { name: 'amount', type: 'double' }] }

async function main() {
  const registry = new SchemaRegistry({ host: URL })
  const subject = `${TOPIC}-value`
  let v1, v2

  await check('avro-register', async () => {
    v1 = (await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(avroV1) }, { subject })).id
    const again = (await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(avroV1) }, { subject })).id
    if (again !== v1) throw new Error(`re-registering gave id ${again}, expected ${v1}`)
    return `id ${v1}, identical schema keeps its id`
  })
  await check('avro-evolve', async () => {
    v2 = (await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(avroV2) }, { subject })).id
    const latest = await registry.getLatestSchemaId(subject)
    if (latest !== v2) throw new Error(`latest id ${latest}, expected ${v2}`)
    const byVersion = await registry.getRegistryId(subject, 1)
    if (byVersion !== v1) throw new Error(`version 1 id ${byVersion}, expected ${v1}`)
    return `version 2 id ${v2}`
  })
  await check('avro-breaking-refused', async () => {
    try {
      await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(avroBreaking) }, { subject })
    } catch (e) {
      const status = e.status || (e.originalError && e.originalError.status)
      if (!/409|incompatible/i.test(`${status} ${e.message}`)) throw new Error(`unexpected error: ${e.message}`)
      return `refused: ${e.message.slice(0, 80)}`
    }
    throw new Error('a breaking change was accepted')
  })
  await check('lookup-by-schema', async () => {
    const id = await registry.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema: JSON.stringify(avroV1) })
    if (id !== v1) throw new Error(`lookup gave ${id}, expected ${v1}`)
    return `id ${id}`
  })
  await check('json-schema', async () => {
    const schema = { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }
    const { id } = await registry.register({ type: SchemaType.JSON, schema: JSON.stringify(schema) }, { subject: `${TOPIC}-json-value` })
    const decoded = await registry.decode(await registry.encode(id, { n: 42 }))
    if (decoded.n !== 42) throw new Error(`decoded ${JSON.stringify(decoded)}`)
    return `id ${id} round-trips`
  })
  await check('protobuf', async () => {
    const schema = 'syntax = "proto3";\npackage compat;\nmessage Thing { string name = 1; int32 count = 2; }\n'
    const { id } = await registry.register({ type: SchemaType.PROTOBUF, schema }, { subject: `${TOPIC}-proto-value` })
    const decoded = await registry.decode(await registry.encode(id, { name: 'x', count: 3 }))
    if (decoded.name !== 'x' || decoded.count !== 3) throw new Error(`decoded ${JSON.stringify(decoded)}`)
    return `id ${id} round-trips`
  })
  await check('protobuf-reference', async () => {
    // money.proto is registered under its own subject; order.proto imports it by that name, so the registry must
    // store the reference, return it with the schema, and serve the referenced version to the decoder.
    const moneySubject = `${TOPIC}-money.proto`
    const money = 'syntax = "proto3";\npackage compat.common;\nmessage Money { string currency = 1; int64 units = 2; }\n'
    await registry.register({ type: SchemaType.PROTOBUF, schema: money }, { subject: moneySubject })
    const order = 'syntax = "proto3";\npackage compat;\nimport "money.proto";\n' +
      'message Order { string id = 1; compat.common.Money total = 2; }\n'
    const references = [{ name: 'money.proto', subject: moneySubject, version: 1 }]
    const { id } = await registry.register({ type: SchemaType.PROTOBUF, schema: order, references }, { subject: `${TOPIC}-order-value` })
    const stored = await registry.getSchema(id)
    if (!stored) throw new Error(`no schema for id ${id}`)
    // A fresh client has nothing cached: decoding must fetch the schema by id and its reference by subject/version.
    const fresh = new SchemaRegistry({ host: URL })
    const decoded = await fresh.decode(await registry.encode(id, { id: 'o1', total: { currency: 'EUR', units: 1250 } }))
    if (decoded.id !== 'o1' || !decoded.total || decoded.total.currency !== 'EUR' || Number(decoded.total.units) !== 1250)
      throw new Error(`decoded ${JSON.stringify(decoded)}`)
    // The client resolves references itself before registering, so the server's answer to a dangling one is asked
    // for directly, as any other REST client would.
    const res = await fetch(`${URL}/subjects/${TOPIC}-order2-value/versions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schemaType: 'PROTOBUF', schema: order, references: [{ ...references[0], version: 9 }] }),
    })
    const body = await res.json()
    if (res.status === 422 && body.error_code === 42201)
      return `id ${id} (imports money.proto) round-trips through a fresh client; a missing reference is refused with 42201`
    throw new Error(`a reference to a missing version gave ${res.status} ${JSON.stringify(body)}`)
  })

  const kafka = new Kafka({ clientId: 'sr-compat', brokers: [B], logLevel: logLevel.NOTHING })
  await check('produce-consume-avro', async () => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    const messages = []
    for (let i = 0; i < 20; i++) {
      const value = i % 2 === 0
        ? await registry.encode(v1, { id: `p${i}`, amount: i * 1.5 })
        : await registry.encode(v2, { id: `p${i}`, amount: i * 1.5, currency: 'USD' })
      messages.push({ key: String(i), value })
    }
    await producer.send({ topic: TOPIC, messages })
    await producer.disconnect()

    // Read back group-less through kafkajs' own fetch path, then decode with the registry.
    const admin = kafka.admin()
    await admin.connect()
    const offsets = await admin.fetchTopicOffsets(TOPIC)
    await admin.disconnect()
    const total = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0)
    if (total !== 20) throw new Error(`topic holds ${total} records, expected 20`)
    const consumer = kafka.consumer({ groupId: `sr-compat-${RUN}` })
    await consumer.connect()
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
    const seen = []
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${seen.length} records`)), 60000)
      consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(await registry.decode(message.value))
          if (seen.length === 20) {
            clearTimeout(timer)
            resolve()
          }
        },
      }).catch(reject)
    })
    await consumer.disconnect()
    const odd = seen.find(r => r.id === 'p1')
    if (!odd || odd.currency !== 'USD') throw new Error(`decoded ${JSON.stringify(odd)}`)
    return '20 records decoded (two schema versions)'
  })

  console.log(`schema-registry: ${failed === 0 ? 'all checks passed' : `${failed} failed`}`)
  process.exit(failed === 0 ? 0 : 1)
}

main().catch(e => {
  bad('scenario', e.stack || String(e))
  process.exit(1)
})
