namespace Tributary.SchemaRegistry.Json;

/// <summary>
/// What draft 4 requires of a schema, written in draft-07 keywords so JsonSchema.Net (which has no draft 4) can check
/// it. The differences from later drafts that matter here: subschemas are objects only (booleans became schemas in
/// draft 6), <c>exclusiveMaximum</c>/<c>exclusiveMinimum</c> are booleans that need <c>maximum</c>/<c>minimum</c>,
/// <c>required</c> and <c>enum</c> must be non-empty arrays of unique values, and there is no <c>const</c>,
/// <c>contains</c>, <c>propertyNames</c> or <c>if</c>/<c>then</c>/<c>else</c> (unknown keywords are allowed, as in
/// every draft, so those are merely ignored).
/// </summary>
internal static class Draft4MetaSchema
{
    public const string Text = """
    {
      "$schema": "http://json-schema.org/draft-07/schema#",
      "definitions": {
        "schemaArray": { "type": "array", "minItems": 1, "items": { "$ref": "#" } },
        "count": { "type": "integer", "minimum": 0 },
        "schemaOrBoolean": { "anyOf": [ { "type": "boolean" }, { "$ref": "#" } ] },
        "schemaMap": { "type": "object", "additionalProperties": { "$ref": "#" } },
        "simpleType": { "enum": [ "array", "boolean", "integer", "null", "number", "object", "string" ] },
        "uniqueStrings": { "type": "array", "items": { "type": "string" }, "minItems": 1, "uniqueItems": true }
      },
      "type": "object",
      "properties": {
        "id": { "type": "string" },
        "$schema": { "type": "string" },
        "$ref": { "type": "string" },
        "title": { "type": "string" },
        "description": { "type": "string" },
        "format": { "type": "string" },
        "multipleOf": { "type": "number", "exclusiveMinimum": 0 },
        "maximum": { "type": "number" },
        "exclusiveMaximum": { "type": "boolean" },
        "minimum": { "type": "number" },
        "exclusiveMinimum": { "type": "boolean" },
        "maxLength": { "$ref": "#/definitions/count" },
        "minLength": { "$ref": "#/definitions/count" },
        "pattern": { "type": "string", "format": "regex" },
        "additionalItems": { "$ref": "#/definitions/schemaOrBoolean" },
        "items": { "anyOf": [ { "$ref": "#" }, { "$ref": "#/definitions/schemaArray" } ] },
        "maxItems": { "$ref": "#/definitions/count" },
        "minItems": { "$ref": "#/definitions/count" },
        "uniqueItems": { "type": "boolean" },
        "maxProperties": { "$ref": "#/definitions/count" },
        "minProperties": { "$ref": "#/definitions/count" },
        "required": { "$ref": "#/definitions/uniqueStrings" },
        "additionalProperties": { "$ref": "#/definitions/schemaOrBoolean" },
        "definitions": { "$ref": "#/definitions/schemaMap" },
        "properties": { "$ref": "#/definitions/schemaMap" },
        "patternProperties": {
          "type": "object",
          "propertyNames": { "format": "regex" },
          "additionalProperties": { "$ref": "#" }
        },
        "dependencies": {
          "type": "object",
          "additionalProperties": { "anyOf": [ { "$ref": "#" }, { "$ref": "#/definitions/uniqueStrings" } ] }
        },
        "enum": { "type": "array", "minItems": 1, "uniqueItems": true },
        "type": {
          "anyOf": [
            { "$ref": "#/definitions/simpleType" },
            { "type": "array", "items": { "$ref": "#/definitions/simpleType" }, "minItems": 1, "uniqueItems": true }
          ]
        },
        "allOf": { "$ref": "#/definitions/schemaArray" },
        "anyOf": { "$ref": "#/definitions/schemaArray" },
        "oneOf": { "$ref": "#/definitions/schemaArray" },
        "not": { "$ref": "#" }
      },
      "dependencies": {
        "exclusiveMaximum": [ "maximum" ],
        "exclusiveMinimum": [ "minimum" ]
      }
    }
    """;
}
