// Confluent's official JavaScript registry client and serdes, @confluentinc/schemaregistry 1.10.1 (npm), against
// Tributary's built-in schema registry. Its Protobuf serde registers schemas as base64 FileDescriptorProtos (each
// imported file first, under its file name, as a reference) and reads them back with format=serialized; its Avro and
// JSON Schema serdes look up the latest version and check what they decode. Records go through kafkajs and are decoded
// from what is consumed.
//
// The registry URL comes from tools/registry_url.js (SCHEMA_REGISTRY_URL, else the server log, else :8081).
'use strict'

const { Kafka, logLevel, Partitioners } = require('kafkajs')
const {
  SchemaRegistryClient, SerdeType,
  AvroSerializer, AvroDeserializer,
  JsonSerializer, JsonDeserializer,
  ProtobufSerializer, ProtobufDeserializer,
} = require('@confluentinc/schemaregistry')
const { create, createFileRegistry, createMutableRegistry } = require('@bufbuild/protobuf')
const { FileDescriptorProtoSchema } = require('@bufbuild/protobuf/wkt')

const B = process.env.BOOTSTRAP
const registryUrl = require('../tools/registry_url')
const URL = registryUrl()
const RUN = `${Math.floor(Date.now() / 1000)}-${process.pid}`

let failed = 0
const ok = (name, msg) => console.log(`PASS confluent-js-serdes ${name}: ${msg}`)
const bad = (name, msg) => {
  failed++
  console.log(`FAIL confluent-js-serdes ${name}: ${msg}`)
}
async function check(name, fn) {
  try {
    ok(name, await fn())
  } catch (e) {
    bad(name, e && e.message ? e.message.split('\n')[0] : String(e))
  }
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)

// Protobuf descriptors built at run time (what protoc-gen-es would generate): compat/money.proto, and
// compat/order.proto importing it.
const STRING = 9, INT64 = 3, INT32 = 5, MESSAGE = 11, OPTIONAL = 1, REPEATED = 3
const moneyFile = create(FileDescriptorProtoSchema, {
  name: `compat/money_${RUN.replace('-', '_')}.proto`,
  package: 'compat.money',
  syntax: 'proto3',
  messageType: [{
    name: 'Money',
    field: [
      { name: 'currency', number: 1, type: STRING, label: OPTIONAL, jsonName: 'currency' },
      { name: 'units', number: 2, type: INT64, label: OPTIONAL, jsonName: 'units' },
    ],
  }],
})
const orderFile = create(FileDescriptorProtoSchema, {
  name: `compat/order_${RUN.replace('-', '_')}.proto`,
  package: 'compat.orders',
  syntax: 'proto3',
  dependency: [moneyFile.name],
  messageType: [
    { name: 'Note', field: [{ name: 'text', number: 1, type: STRING, label: OPTIONAL, jsonName: 'text' }] },
    {
      name: 'Order',
      field: [
        { name: 'id', number: 1, type: STRING, label: OPTIONAL, jsonName: 'id' },
        { name: 'quantity', number: 2, type: INT32, label: OPTIONAL, jsonName: 'quantity' },
        { name: 'price', number: 3, type: MESSAGE, typeName: '.compat.money.Money', label: OPTIONAL, jsonName: 'price' },
        { name: 'tags', number: 4, type: STRING, label: REPEATED, jsonName: 'tags' },
      ],
    },
  ],
})
const protoFiles = createFileRegistry(orderFile, (name) => (name === moneyFile.name ? moneyFile : undefined))
const OrderDesc = protoFiles.getMessage('compat.orders.Order')
const MoneyDesc = protoFiles.getMessage('compat.money.Money')

const avroV1 = { type: 'record', name: 'Reading', namespace: 'compat.js', fields: [{ name: 'sensor', type: 'string' }, { name: 'value', type: 'double' }] }
const avroV2 = { ...avroV1, fields: [...avroV1.fields, { name: 'unit', type: 'string', default: 'C' }] }
const jsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Shipment',
  type: 'object',
  properties: { id: { type: 'string' }, weight: { type: 'number' } },
  required: ['id'],
  additionalProperties: false,
}

async function roundTrip(kafka, topic, values) {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  await admin.disconnect()
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  await producer.send({ topic, messages: values.map((value) => ({ value })) })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: `${topic}-g` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${got.length} of ${values.length} records in 30 s`)), 30000)
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value)
        if (got.length === values.length) {
          clearTimeout(timer)
          resolve()
        }
      },
    }).catch(reject)
  })
  await consumer.disconnect()
  return got
}

async function main() {
  const client = new SchemaRegistryClient({ baseURLs: [URL], cacheCapacity: 1000 })
  const kafka = new Kafka({ clientId: 'compat-confluent-js-serdes', brokers: [B], logLevel: logLevel.NOTHING })

  await check('protobuf-auto-register', async () => {
    const ser = new ProtobufSerializer(client, SerdeType.VALUE, { autoRegisterSchemas: true, registry: createMutableRegistry(OrderDesc.file, MoneyDesc.file) })
    const topic = `js-proto-${RUN}`
    const orders = [
      create(OrderDesc, { id: 'o-1', quantity: 3, price: create(MoneyDesc, { currency: 'EUR', units: 12n }), tags: ['a', 'b'] }),
      create(OrderDesc, { id: 'o-2', quantity: 1, tags: [] }),
    ]
    const encoded = []
    for (const o of orders) encoded.push(await ser.serialize(topic, o))
    const subjects = await client.getAllSubjects()
    if (!subjects.includes(`${topic}-value`) || !subjects.includes(moneyFile.name)) throw new Error(`subjects ${JSON.stringify(subjects)}`)
    const latest = await client.getLatestSchemaMetadata(`${topic}-value`)
    const refs = (latest.references || []).map((r) => `${r.name}->${r.subject}/${r.version}`)
    if (latest.schemaType !== 'PROTOBUF' || refs.length !== 1 || refs[0] !== `${moneyFile.name}->${moneyFile.name}/1`) {
      throw new Error(`registered as ${latest.schemaType} with references ${JSON.stringify(refs)}`)
    }
    if (!/message Order/.test(latest.schema)) throw new Error(`stored schema is not .proto text: ${latest.schema.slice(0, 60)}`)
    const consumed = await roundTrip(kafka, topic, encoded)
    // A fresh client and deserializer: everything comes from the registry (format=serialized descriptors).
    const deser = new ProtobufDeserializer(new SchemaRegistryClient({ baseURLs: [URL] }), SerdeType.VALUE, {})
    const decoded = []
    for (const v of consumed) decoded.push(await deser.deserialize(topic, v))
    const summary = decoded.map((d) => `${d.id}:${d.quantity}:${d.price ? `${d.price.currency}${d.price.units}` : '-'}:${d.tags.join('|')}`)
    if (!same(summary, ['o-1:3:EUR12:a|b', 'o-2:1:-:'])) throw new Error(`decoded ${JSON.stringify(summary)}`)
    return `id ${latest.id} (imports ${moneyFile.name} by reference), 2 records decoded by a fresh deserializer: ${summary.join(', ')}`
  })

  await check('protobuf-same-schema-same-id', async () => {
    const ser = new ProtobufSerializer(new SchemaRegistryClient({ baseURLs: [URL] }), SerdeType.VALUE, { autoRegisterSchemas: true, registry: createMutableRegistry(OrderDesc.file, MoneyDesc.file) })
    const topic = `js-proto-${RUN}`
    const bytes = await ser.serialize(topic, create(OrderDesc, { id: 'o-3' }))
    const id = bytes.readInt32BE(1)
    const latest = await client.getLatestSchemaMetadata(`${topic}-value`)
    if (id !== latest.id || latest.version !== 1) throw new Error(`re-registering from another client gave id ${id}; latest is id ${latest.id} version ${latest.version}`)
    return `a second client registering the same descriptor got id ${id}, still version 1`
  })

  await check('avro-latest-version', async () => {
    const topic = `js-avro-${RUN}`
    const subject = `${topic}-value`
    const id1 = await client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(avroV1) })
    const id2 = await client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(avroV2) })
    const ser = new AvroSerializer(client, SerdeType.VALUE, { useLatestVersion: true })
    const values = [{ sensor: 's1', value: 20.5, unit: 'C' }, { sensor: 's2', value: -3.25, unit: 'F' }]
    const encoded = []
    for (const v of values) encoded.push(await ser.serialize(topic, v))
    if (encoded.some((b) => b[0] !== 0 || b.readInt32BE(1) !== id2)) throw new Error('records not framed with magic 0 and the latest id')
    const consumed = await roundTrip(kafka, topic, encoded)
    const deser = new AvroDeserializer(new SchemaRegistryClient({ baseURLs: [URL] }), SerdeType.VALUE, {})
    const decoded = []
    for (const v of consumed) decoded.push(await deser.deserialize(topic, v))
    if (!same(decoded, values)) throw new Error(`decoded ${JSON.stringify(decoded)}`)
    return `ids ${id1} then ${id2}; 2 records written with the latest and decoded by a fresh deserializer`
  })

  await check('avro-incompatible-refused', async () => {
    const subject = `js-avro-${RUN}-value`
    const breaking = { ...avroV1, fields: [{ name: 'sensor', type: 'long' }] }
    try {
      await client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(breaking) })
    } catch (e) {
      if (e.status !== 409 || e.errorCode !== 409) throw new Error(`refused with status ${e.status} code ${e.errorCode}: ${e.message}`)
      return `409/409: ${e.message.slice(0, 80)}`
    }
    throw new Error('a breaking change was accepted')
  })

  await check('json-schema-validate', async () => {
    const topic = `js-json-${RUN}`
    const id = await client.register(`${topic}-value`, { schemaType: 'JSON', schema: JSON.stringify(jsonSchema) })
    const ser = new JsonSerializer(client, SerdeType.VALUE, { useLatestVersion: true, validate: true })
    const values = [{ id: 'sh-1', weight: 2.5 }, { id: 'sh-2' }]
    const encoded = []
    for (const v of values) encoded.push(await ser.serialize(topic, v))
    let refused = false
    try {
      await ser.serialize(topic, { weight: 1 })
    } catch (e) {
      refused = true
    }
    if (!refused) throw new Error('a record without the required id was serialized')
    const consumed = await roundTrip(kafka, topic, encoded)
    const deser = new JsonDeserializer(new SchemaRegistryClient({ baseURLs: [URL] }), SerdeType.VALUE, { validate: true })
    const decoded = []
    for (const v of consumed) decoded.push(await deser.deserialize(topic, v))
    if (!same(decoded, values)) throw new Error(`decoded ${JSON.stringify(decoded)}`)
    return `id ${id}; 2 records validated and decoded, one without "id" refused by the serializer`
  })

  await check('lookup-and-versions', async () => {
    const subject = `js-avro-${RUN}-value`
    const found = await client.getId(subject, { schemaType: 'AVRO', schema: JSON.stringify(avroV1) })
    const versions = await client.getAllVersions(subject)
    const byId = await client.getBySubjectAndId(subject, found)
    if (!same(versions, [1, 2]) || JSON.parse(byId.schema).name !== 'Reading') throw new Error(`versions ${JSON.stringify(versions)}, schema ${byId.schema}`)
    return `schema lookup gave id ${found}; versions ${JSON.stringify(versions)}`
  })
}

main()
  .catch((e) => bad('setup', e && e.message ? e.message : String(e)))
  .finally(() => {
    if (failed === 0) console.log('confluent-js-serdes: all checks passed')
    process.exit(failed === 0 ? 0 : 1)
  })
