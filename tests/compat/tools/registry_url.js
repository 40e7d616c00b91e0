// Where the scenarios find the schema registry: SCHEMA_REGISTRY_URL when set, else the URL the server logged at start
// ("schema registry listening on URL"; run.sh keeps that log in $COMPAT_WORK), else the default port on loopback.
'use strict'

const fs = require('fs')
const path = require('path')

module.exports = function registryUrl() {
  if (process.env.SCHEMA_REGISTRY_URL) return process.env.SCHEMA_REGISTRY_URL
  try {
    const log = fs.readFileSync(path.join(process.env.COMPAT_WORK || '.', 'server.log'), 'utf8')
    const m = log.match(/schema registry listening on (http:\/\/\S+)/)
    if (m) return m[1].replace('//localhost:', '//127.0.0.1:')
  } catch (e) {
    // no log: fall back to the default port
  }
  return 'http://127.0.0.1:8081'
}
