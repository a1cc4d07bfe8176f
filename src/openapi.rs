//! The OpenAPI 3.1 document of the HTTP API, built from the domains' metadata: every command with its
//! parameter types, every event, every rejection code, every view.

use anthill_runtime::meta::{AggregateMeta, DomainMeta, FieldMeta, TypeMeta, ViewMeta};
use serde_json::{json, Map, Value};

/// The stable error codes of the HTTP API, with the status each comes with.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("invalid-json", 400, "the body is not a JSON object"),
    ("invalid-id", 400, "the instance id in the path is not valid for the aggregate's key type"),
    ("invalid-query", 400, "a query parameter is malformed"),
    (
        "invalid-idempotency-key",
        400,
        "the Idempotency-Key header (or a batch item's key) is empty, longer than 128 bytes, or not visible ASCII",
    ),
    ("invalid-expected-version", 400, "the Expected-Version header is not an unsigned integer"),
    ("invalid-last-event-id", 400, "the Last-Event-ID header of an event stream is not a sequence number"),
    ("unauthorized", 401, "a bearer token is required"),
    ("not-found", 404, "no such domain, aggregate, command, view, instance or row"),
    ("version-conflict", 409, "the instance is not at the expected version"),
    ("rejected", 409, "the model refused the command; `code` names the rejection"),
    ("body-too-large", 413, "the body exceeds the size limit"),
    ("too-many-commands", 413, "a batch carries more commands than the limit (1000)"),
    ("unsupported-media-type", 415, "the body is not application/json"),
    ("invalid-parameters", 422, "the body does not match the command's parameters"),
    ("overloaded", 503, "the engine is shedding load; retry after the Retry-After header"),
    (
        "unavailable",
        503,
        "the store cannot accept writes (disk or map full, shutting down), or the server keeps no global feed",
    ),
];

/// JSON Schema of a model type as the API reads and writes it.
pub fn schema(ty: &TypeMeta) -> Value {
    match ty {
        TypeMeta::Bool => json!({"type": "boolean"}),
        TypeMeta::Int { name, signed, bits } => {
            // Exact bounds: JSON numbers as integers, not floats that round past the type's range.
            let (min, max): (Value, Value) = if *signed {
                let max = i64::MAX >> (64 - bits);
                (json!(-max - 1), json!(max))
            } else {
                (json!(0), json!(u64::MAX >> (64 - bits)))
            };
            json!({"type": "integer", "format": name, "minimum": min, "maximum": max})
        }
        TypeMeta::Decimal { scale } => {
            // Digits such that the mantissa fits an i64; sent as a string (numbers are read too).
            let whole = 18 - (*scale).min(18);
            let pattern = if *scale == 0 {
                format!("^-?[0-9]{{1,{whole}}}$")
            } else {
                format!("^-?[0-9]{{1,{whole}}}(\\.[0-9]{{1,{scale}}})?$")
            };
            // Whole numbers are read exactly when `n * 10^scale` fits an i64.
            let whole_max = i64::MAX / 10i64.pow((*scale).min(18));
            json!({
                "description": format!("a decimal with at most {scale} digits after the point, as a string (or a whole number)"),
                "anyOf": [
                    {"type": "string", "pattern": pattern},
                    {"type": "integer", "minimum": -whole_max, "maximum": whole_max}
                ]
            })
        }
        TypeMeta::String => json!({"type": "string"}),
        TypeMeta::Timestamp => json!({
            "description": "RFC 3339 time (written in UTC with microseconds), or microseconds since 1970",
            "oneOf": [
                {"type": "string", "format": "date-time"},
                {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}
            ]
        }),
        TypeMeta::Id { name, repr } => {
            let mut s = schema(repr);
            s["title"] = json!(name);
            s
        }
        TypeMeta::Enum { name, variants } => {
            let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
            json!({"title": name, "type": "string", "enum": names})
        }
        TypeMeta::Record { name, fields } => {
            let mut s = object(fields, true);
            s["title"] = json!(name);
            s
        }
        TypeMeta::Optional(inner) => json!({"anyOf": [schema(inner), {"type": "null"}]}),
        TypeMeta::Map(_, value) => json!({"type": "object", "additionalProperties": schema(value)}),
        TypeMeta::List(element) => json!({"type": "array", "items": schema(element)}),
        TypeMeta::Set(element) => json!({"type": "array", "items": schema(element), "uniqueItems": true}),
    }
}

/// An object with these fields; all required (optional fields may be `null` or left out on input).
fn object(fields: &[FieldMeta], closed: bool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for f in fields {
        let mut s = schema(f.ty);
        if let Some(doc) = f.doc {
            s["description"] = json!(doc);
        }
        properties.insert(f.name.to_string(), s);
        if !matches!(f.ty, TypeMeta::Optional(_)) {
            required.push(f.name);
        }
    }
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": !closed})
}

fn error_response(description: &str, codes: &[&str]) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "enum": codes},
                "message": {"type": "string"},
                "code": {"type": "string"}
            }
        }}}
    })
}

fn event_schema(aggregate: &AggregateMeta) -> Value {
    let variants: Vec<Value> = aggregate
        .events
        .iter()
        .map(|e| {
            let mut s = object(e.fields, false);
            s["properties"]["type"] = json!({"const": e.name});
            s["required"].as_array_mut().expect("an array").push(json!("type"));
            if let Some(doc) = e.doc {
                s["description"] = json!(doc);
            }
            s
        })
        .collect();
    json!({"oneOf": variants})
}

fn envelope_schema(event: Value) -> Value {
    json!({
        "type": "object",
        "required": ["seq", "event_id", "aggregate", "id", "version", "event"],
        "properties": {
            "seq": {"type": "integer", "minimum": 1, "description": "position in the global log, gapless"},
            "event_id": {"type": "string", "description": "UUIDv7"},
            "domain": {"type": "string"},
            "aggregate": {"type": "string"},
            "id": {"type": "string"},
            "version": {"type": "integer", "minimum": 1, "description": "the instance's version after this event"},
            "recorded_at": {"type": "string", "format": "date-time"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "command_id": {"type": "string"},
            "correlation_id": {"type": "string"},
            "event": event
        }
    })
}

fn id_parameter(aggregate: &AggregateMeta) -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"},
           "description": format!("the key of the `{}` instance", aggregate.name)})
}

fn aggregate_paths(domain: &DomainMeta, aggregate: &AggregateMeta, paths: &mut Map<String, Value>) {
    let base = format!("/{}/{}/{{id}}", domain.name, aggregate.name);
    let events = envelope_schema(event_schema(aggregate));
    let not_found = error_response("unknown path or instance", &["not-found", "invalid-id"]);
    paths.insert(
        base.clone(),
        json!({"get": {
            "summary": format!("The current state of a `{}`", aggregate.name),
            "operationId": format!("{}.{}.state", domain.name, aggregate.name),
            "parameters": [id_parameter(aggregate)],
            "responses": {
                "200": {"description": "the state", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["id", "version", "state"],
                    "properties": {"id": {"type": "string"}, "version": {"type": "integer"},
                                   "state": object(aggregate.state, false)}}}}},
                "400": not_found.clone(),
                "404": not_found.clone()
            }
        }}),
    );
    paths.insert(
        format!("{base}/events"),
        json!({"get": {
            "summary": format!("The events of a `{}`, in order", aggregate.name),
            "operationId": format!("{}.{}.events", domain.name, aggregate.name),
            "parameters": [id_parameter(aggregate)],
            "responses": {
                "200": {"description": "the events", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["events"],
                    "properties": {"events": {"type": "array", "items": events}}}}}},
                "400": not_found.clone(),
                "404": not_found.clone()
            }
        }}),
    );
    for command in aggregate.commands {
        let mut rejections: Vec<&str> = command.rejections.to_vec();
        rejections.sort_unstable();
        let described: Vec<String> = command
            .rejections
            .iter()
            .filter_map(|code| aggregate.rejection(code))
            .map(|r| format!("`{}`: {}", r.code, r.message))
            .collect();
        let committed = json!({
            "type": "object",
            "required": ["version", "events"],
            "properties": {
                "version": {"type": "integer", "description": "the instance's version after the command"},
                "events": {"type": "array", "items": envelope_schema(event_schema(aggregate))}
            }
        });
        let rejected = json!({
            "description": format!("rejected by the model, or a version conflict. Rejections: {}", described.join("; ")),
            "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string", "enum": ["rejected", "version-conflict"]},
                    "code": {"type": "string", "enum": rejections},
                    "message": {"type": "string"}
                }
            }}}
        });
        let mut operation = json!({
            "summary": command.doc.unwrap_or(command.name),
            "operationId": format!("{}.{}.{}", domain.name, aggregate.name, command.name),
            "parameters": [
                id_parameter(aggregate),
                {"name": "Idempotency-Key", "in": "header", "required": false,
                 "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                 "description": "a retry of this request (same path and body) with the same key returns the first answer and runs nothing; \
                                 a UUIDv7 key is cheapest to store (its records keep their time order), any other key is hashed"},
                {"name": "Expected-Version", "in": "header", "required": false,
                 "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
                 "description": "refuse with 409 version-conflict unless the instance is at this version"}
            ],
            "requestBody": {
                "required": command.params.iter().any(|p| !matches!(p.ty, TypeMeta::Optional(_))),
                "content": {"application/json": {"schema": object(command.params, true)}}
            },
            "responses": {
                "200": {"description": "committed durably", "content": {"application/json": {"schema": committed}}},
                "400": error_response("bad request", &["invalid-json", "invalid-id", "invalid-idempotency-key", "invalid-expected-version"]),
                "404": error_response("unknown path", &["not-found"]),
                "409": rejected,
                "413": error_response("body too large", &["body-too-large"]),
                "415": error_response("not JSON", &["unsupported-media-type"]),
                "422": error_response("parameters do not match", &["invalid-parameters"]),
                "503": error_response("overloaded or unavailable; see Retry-After", &["overloaded", "unavailable"])
            }
        });
        if command.is_extern {
            operation["description"] = json!("decided by a Rust function (an extern command)");
        }
        paths.insert(format!("{base}/{}", command.name), json!({"post": operation}));
    }
}

/// `POST /{domain}/commands`: a batch of the domain's commands, each item typed by its command.
fn batch_path(domain: &DomainMeta, paths: &mut Map<String, Value>) {
    let mut items = Vec::new();
    let mut envelopes = Vec::new();
    for aggregate in domain.aggregates {
        envelopes.push(envelope_schema(event_schema(aggregate)));
        for command in aggregate.commands {
            let has_required = command.params.iter().any(|p| !matches!(p.ty, TypeMeta::Optional(_)));
            let mut required = vec!["aggregate", "id", "command"];
            if has_required {
                required.push("body");
            }
            let body = if has_required {
                object(command.params, true)
            } else {
                json!({"anyOf": [object(command.params, true), {"type": "null"}]})
            };
            items.push(json!({
                "type": "object",
                "title": format!("{}.{}", aggregate.name, command.name),
                "required": required,
                "additionalProperties": false,
                "properties": {
                    "aggregate": {"const": aggregate.name},
                    "id": {"type": "string", "description": format!("the key of the `{}` instance", aggregate.name)},
                    "command": {"const": command.name},
                    "body": body,
                    "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[ -~]+$",
                        "description": "as the Idempotency-Key header of the single route: a retry of this item \
                                        (same command, instance and body) returns the first answer and runs nothing; \
                                        a UUIDv7 key is cheapest to store"},
                    "expected_version": {"type": "integer", "minimum": 0, "maximum": u64::MAX,
                        "description": "as the Expected-Version header of the single route"}
                }
            }));
        }
    }
    let codes: Vec<&str> = ERROR_CODES.iter().map(|(code, _, _)| *code).collect();
    let result = json!({"oneOf": [
        {
            "type": "object",
            "description": "committed durably: the single route's 200 body",
            "required": ["status", "version", "events"],
            "properties": {
                "status": {"const": 200},
                "version": {"type": "integer", "description": "the instance's version after the command"},
                "events": {"type": "array", "items": {"oneOf": envelopes}}
            }
        },
        {
            "type": "object",
            "description": "not committed: the single route's error body and status (409 `rejected` with the \
                            model's `code`, 422 `invalid-parameters`, 503 `overloaded`...)",
            "required": ["status", "error", "message"],
            "properties": {
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "error": {"type": "string", "enum": codes},
                "message": {"type": "string"},
                "code": {"type": "string", "description": "the rejection's code, for `rejected`"}
            }
        }
    ]});
    paths.insert(
        format!("/{}/commands", domain.name),
        json!({"post": {
            "summary": format!("Several `{}` commands in one request, committed together", domain.name),
            "description": format!(
                "Each command is queued at once, so they share the engine's batches and syncs; the answer comes once \
                 every one is durable, one result per command in the same order, each what the single route would \
                 answer (with its `status`). At most {} commands and {} bytes. A `Retry-After` header comes when any \
                 command was shed (503 `overloaded`).",
                crate::http::BATCH_COMMANDS_MAX,
                crate::http::BATCH_BODY_BYTES_MAX
            ),
            "operationId": format!("{}.commands", domain.name),
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "array", "maxItems": crate::http::BATCH_COMMANDS_MAX, "items": {"oneOf": items}
                }}}
            },
            "responses": {
                "200": {"description": "every command answered, durably", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["results"],
                    "properties": {"results": {"type": "array", "items": result}}}}}},
                "400": error_response("not a JSON array", &["invalid-json"]),
                "404": error_response("unknown domain", &["not-found"]),
                "413": error_response("too many commands or too large", &["too-many-commands", "body-too-large"]),
                "415": error_response("not JSON", &["unsupported-media-type"])
            }
        }}),
    );
}

fn view_paths(domain: &DomainMeta, view: &ViewMeta, paths: &mut Map<String, Value>) {
    let mut row = Map::new();
    for c in view.columns {
        row.insert(c.name.to_string(), schema(c.ty));
    }
    let row = json!({"type": "object", "properties": row});
    let base = format!("/{}/views/{}", domain.name, view.name);
    let not_found = error_response("unknown view or row", &["not-found", "invalid-id"]);
    paths.insert(
        base.clone(),
        json!({"get": {
            "summary": view.doc.unwrap_or(view.name),
            "operationId": format!("{}.views.{}.range", domain.name, view.name),
            "parameters": [
                {"name": "from", "in": "query", "required": false, "schema": {"type": "string"},
                 "description": "the first key (inclusive)"},
                {"name": "limit", "in": "query", "required": false,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
            ],
            "responses": {
                "200": {"description": "rows in key order", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["rows"],
                    "properties": {"rows": {"type": "array", "items": {
                        "type": "object", "required": ["key", "row"],
                        "properties": {"key": {"type": "string"}, "row": row.clone()}}}}}}}},
                "400": error_response("bad query", &["invalid-query", "invalid-id"]),
                "404": not_found.clone()
            }
        }}),
    );
    paths.insert(
        format!("{base}/{{key}}"),
        json!({"get": {
            "summary": format!("One row of `{}`", view.name),
            "operationId": format!("{}.views.{}.get", domain.name, view.name),
            "parameters": [{"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "the row", "content": {"application/json": {"schema": row}}},
                "400": not_found.clone(),
                "404": not_found
            }
        }}),
    );
}

/// The whole document for these domains.
pub fn document(domains: &[&DomainMeta]) -> Value {
    let mut paths = Map::new();
    let feed_item = json!({"type": "object", "description": "an event envelope; `event` is the aggregate's event"});
    let global_item = json!({"type": "object", "required": ["seq", "domain", "domain_seq", "event"],
        "description": "an event envelope as in a domain's feed, with `seq` the global sequence number and \
                        `domain_seq` the domain's"});
    let domain_names: Vec<&str> = domains.iter().map(|d| d.name).collect();
    let view_names: Vec<&str> = domains.iter().flat_map(|d| d.views.iter().map(|v| v.name)).collect();
    let domain_parameter =
        json!({"name": "domain", "in": "path", "required": true, "schema": {"type": "string", "enum": domain_names}});
    let feed_parameters = [
        json!({"name": "since", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}}),
        json!({"name": "limit", "in": "query", "required": false,
               "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}),
        json!({"name": "wait_ms", "in": "query", "required": false,
               "schema": {"type": "integer", "minimum": 0, "maximum": 30000},
               "description": "long poll: wait up to this long for a first event"}),
    ];
    let feed_page = |item: &Value| {
        json!({"description": "events and the position to ask from next", "content": {"application/json": {"schema": {
            "type": "object", "required": ["events", "next"],
            "properties": {"events": {"type": "array", "items": item}, "next": {"type": "integer"}}}}}})
    };
    let stream_parameters = [
        json!({"name": "since", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0},
               "description": "start after this sequence number (Last-Event-ID, when sent, wins)"}),
        json!({"name": "Last-Event-ID", "in": "header", "required": false, "schema": {"type": "string"},
               "description": "the `id` of the last message received: a reconnecting EventSource resumes after it"}),
    ];
    let stream_response = json!({
        "description": "server-sent events, one message per event: `id` is its sequence number, `data` its JSON; \
                        keep-alive comments every 15 s; the stream ends when the server shuts down",
        "content": {"text/event-stream": {"schema": {"type": "string"}}}});
    let mut domain_feed = vec![domain_parameter.clone()];
    domain_feed.extend(feed_parameters.iter().cloned());
    paths.insert(
        "/{domain}/events".into(),
        json!({"get": {
            "summary": "One domain's changes feed: its events after `since` (its own sequence numbers), gapless and in order",
            "operationId": "events",
            "parameters": domain_feed,
            "responses": {
                "200": feed_page(&feed_item),
                "400": error_response("bad query", &["invalid-query"]),
                "404": error_response("unknown domain", &["not-found"])
            }
        }}),
    );
    paths.insert(
        "/events".into(),
        json!({"get": {
            "summary": "The global changes feed: every domain's events after `since`, in one gapless order that \
                        never changes (a few milliseconds behind the domains' feeds)",
            "operationId": "globalEvents",
            "parameters": feed_parameters,
            "responses": {
                "200": feed_page(&global_item),
                "400": error_response("bad query", &["invalid-query"]),
                "503": error_response("no global feed", &["unavailable"])
            }
        }}),
    );
    paths.insert(
        "/events/stream".into(),
        json!({"get": {
            "summary": "The global changes feed as server-sent events (follows it live)",
            "operationId": "globalEventStream",
            "parameters": stream_parameters.clone(),
            "responses": {
                "200": stream_response.clone(),
                "400": error_response("bad query or Last-Event-ID", &["invalid-query", "invalid-last-event-id"]),
                "503": error_response("no global feed", &["unavailable"])
            }
        }}),
    );
    let mut domain_stream = vec![domain_parameter.clone()];
    domain_stream.extend(stream_parameters);
    paths.insert(
        "/{domain}/events/stream".into(),
        json!({"get": {
            "summary": "One domain's changes feed as server-sent events (follows it live)",
            "operationId": "eventStream",
            "parameters": domain_stream,
            "responses": {
                "200": stream_response,
                "400": error_response("bad query or Last-Event-ID", &["invalid-query", "invalid-last-event-id"]),
                "404": error_response("unknown domain", &["not-found"])
            }
        }}),
    );
    paths.insert(
        "/_admin/{domain}/views/{view}/rebuild".into(),
        json!({"post": {
            "summary": "Clear a view and fold the whole log into it again (writers wait meanwhile)",
            "operationId": "rebuildView",
            "parameters": [domain_parameter,
                {"name": "view", "in": "path", "required": true, "schema": {"type": "string", "enum": view_names}}],
            "responses": {
                "200": {"description": "rebuilt", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["domain", "view", "events"],
                    "properties": {"domain": {"type": "string"}, "view": {"type": "string"},
                                   "events": {"type": "integer", "description": "events folded"}}}}}},
                "404": error_response("unknown domain or view", &["not-found"]),
                "503": error_response("the store cannot take writes now", &["unavailable"])
            }
        }}),
    );
    for domain in domains {
        batch_path(domain, &mut paths);
        for aggregate in domain.aggregates {
            aggregate_paths(domain, aggregate, &mut paths);
        }
        for view in domain.views {
            view_paths(domain, view, &mut paths);
        }
    }
    let codes: Vec<Value> = ERROR_CODES
        .iter()
        .map(|(code, status, what)| json!({"code": code, "status": status, "meaning": what}))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "anthill",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Commands, events, state and views of the domains in domains/, generated from the models.",
            "x-error-codes": codes
        },
        "paths": paths
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ledger_command_has_an_operation_with_its_rejections() {
        let doc = document(&[&crate::ledger::META]);
        let op = &doc["paths"]["/ledger/account/{id}/withdraw"]["post"];
        let codes = op["responses"]["409"]["content"]["application/json"]["schema"]["properties"]["code"]["enum"]
            .as_array()
            .expect("rejection codes");
        assert!(codes.contains(&json!("non-negative")) && codes.contains(&json!("not-open")), "{codes:?}");
        let body = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["required"], json!(["amount"]));
        assert_eq!(body["additionalProperties"], json!(false));
        for command in crate::ledger::META.aggregates[0].commands {
            let path = format!("/ledger/account/{{id}}/{}", command.name);
            assert!(doc["paths"][&path]["post"].is_object(), "{path}");
        }
        assert!(doc["paths"]["/ledger/views/account-activity/{key}"]["get"].is_object());
        let batch = &doc["paths"]["/ledger/commands"]["post"];
        let items = &batch["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(items["maxItems"], json!(crate::http::BATCH_COMMANDS_MAX));
        let withdraw = items["items"]["oneOf"]
            .as_array()
            .expect("one item schema per command")
            .iter()
            .find(|item| item["properties"]["command"]["const"] == "withdraw")
            .expect("withdraw has an item schema");
        assert_eq!(withdraw["properties"]["body"]["required"], json!(["amount"]));
    }

    #[test]
    fn integer_bounds_and_decimals() {
        assert_eq!(schema(&TypeMeta::Int { name: "u8", signed: false, bits: 8 })["maximum"], json!(255));
        assert_eq!(schema(&TypeMeta::Int { name: "i8", signed: true, bits: 8 })["minimum"], json!(-128));
        assert_eq!(schema(&TypeMeta::Int { name: "u64", signed: false, bits: 64 })["maximum"], json!(u64::MAX));
        assert_eq!(schema(&TypeMeta::Int { name: "i64", signed: true, bits: 64 })["minimum"], json!(i64::MIN));
        let decimal = schema(&TypeMeta::Decimal { scale: 2 });
        assert_eq!(decimal["anyOf"][0]["pattern"], json!("^-?[0-9]{1,16}(\\.[0-9]{1,2})?$"));
    }
}
