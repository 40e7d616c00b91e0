// kafkajs 2.2.4 over TLS and over SASL_SSL with SCRAM-SHA-256 and -512: produce a record and read it back through
// a consumer group; a wrong SCRAM password is refused with kafkajs' authentication error.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

let failed = 0
const ok = (name, msg) => console.log(`PASS kafkajs-security ${name}: ${msg}`)
const bad = (name, msg) => {
  failed++
  console.log(`FAIL kafkajs-security ${name}: ${msg}`)
}

async function roundTrip(name, config) {
  const kafka = new Kafka({ clientId: `compat-${name}`, logLevel: logLevel.NOTHING, ...config })
  const topic = `kafkajs-${name}-${Date.now()}`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  await admin.disconnect()
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: [{ value: `value-${name}` }] })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: `g-${name}-${Date.now()}` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const value = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no record within 30 s')), 30000)
    consumer.run({ eachMessage: async ({ message }) => { clearTimeout(timer); resolve(message.value.toString()) } })
  })
  await consumer.disconnect()
  return value
}

async function main() {
  if (!process.env.SSL_BOOTSTRAP) {
    console.log('SKIP kafkajs-security all: no secured listeners (run.sh starts them with its own server)')
    return
  }
  const ssl = { ca: [fs.readFileSync(process.env.CA_LOCATION, 'utf-8')] }
  const cases = [
    ['ssl', { brokers: [process.env.SSL_BOOTSTRAP], ssl }],
    ['scram-256', { brokers: [process.env.SASL_SSL_BOOTSTRAP], ssl, sasl: { mechanism: 'scram-sha-256', username: process.env.SCRAM_USER, password: process.env.SCRAM_PASSWORD } }],
    ['scram-512', { brokers: [process.env.SASL_SSL_BOOTSTRAP], ssl, sasl: { mechanism: 'scram-sha-512', username: process.env.SCRAM_USER, password: process.env.SCRAM_PASSWORD } }],
  ]
  for (const [name, config] of cases) {
    try {
      const value = await roundTrip(name, config)
      if (value === `value-${name}`) ok(name, `produced and read back ${value}`)
      else bad(name, `read back ${value}`)
    } catch (e) {
      bad(name, `${e.name}: ${e.message}`)
    }
  }
  const wrong = new Kafka({
    clientId: 'compat-wrong', logLevel: logLevel.NOTHING, brokers: [process.env.SASL_SSL_BOOTSTRAP], ssl, retry: { retries: 0 },
    sasl: { mechanism: 'scram-sha-256', username: process.env.SCRAM_USER, password: 'wrong' },
  }).admin()
  try {
    await wrong.connect()
    bad('wrong-password', 'a wrong password was accepted')
  } catch (e) {
    if (e.name === 'KafkaJSSASLAuthenticationError') ok('wrong-password', `refused: ${e.message}`)
    else bad('wrong-password', `refused with ${e.name}: ${e.message}`)
  } finally {
    await wrong.disconnect().catch(() => {})
  }
}

main().then(() => process.exit(failed ? 1 : 0), e => { bad('run', e.stack); process.exit(1) })
