// Package scenario is wsload's scenario language: a YAML (or JSON) file that
// says what the load looks like over time (phases) and what each connection
// does (weighted flows of steps). Load parses, validates and compiles it into
// a Plan before any connection is opened:
//
//	plan, err := scenario.Load("chat.yaml")
//	if err != nil {
//		fmt.Fprintln(os.Stderr, err) // chat.yaml:12:7: unknown key "timout" in expect (hint: did you mean `timeout`?)
//		os.Exit(2)
//	}
//	err = plan.Override(scenario.Overrides{Target: "ws://127.0.0.1:9000/", Connections: 5000})
//	plan.Describe(os.Stdout) // what `wsload check` prints
//
// A scenario:
//
//	target: ws://127.0.0.1:8080/chat       # ws:// or wss://; --target overrides it
//	headers: {Authorization: "Bearer ${env.TOKEN}"}
//	subprotocols: [chat]
//	tls: {insecure: true, server_name: example.com, ca_file: ca.pem}
//	compression: true                      # permessage-deflate
//	data: users.csv                        # CSV with a header row; connection n takes row n mod rows
//	phases:                                # one after another
//	  - {connections: {from: 0, to: 20000}, duration: 60s}   # ramp
//	  - {connections: 20000, duration: 5m}                   # hold
//	  - {connections: {from: 20000, to: 0}, duration: 30s}   # ramp down
//	  - {arrivals: 50, duration: 2m}       # 50 new connections per second, each runs its flow to the end
//	flows:
//	  - name: listener
//	    weight: 95                         # relative; normalized so the weights sum to 1
//	    strict: false                      # true: a message no expect waits for is an error
//	    steps: [...]
//
// Steps, one per list item; any step may also have `name:` (its histogram,
// default "<flow>.<kind>@<line>") and `mark:` (a time later expects can
// measure from):
//
//	steps:
//	  - send: "hello ${conn}"                          # text template
//	  - send: {json: {op: join, user: "${row.user}", n: "${seq}"}, stamp: true}
//	  - send: {hex: "0102ff"}                          # also base64:, file: (binary by default; binary: false for text)
//	  - expect: {contains: pong}                       # or regex: '…', json: {PATH: VALUE, PATH: {">": 3}, PATH: {exists: true}}
//	  - expect: {json: {op: welcome}, timeout: 5s, since: MARK, capture: {token: {json: session.token}}}
//	  - expect: {stamped: true}                        # fan-out: latency from the publisher's stamp
//	  - capture: {var: room, regex: 'room=(\w+)'}      # from the message the latest expect matched
//	  - sleep: 2s                                      # or {uniform: [1s, 3s]}, {exponential: 2s, max: 10s}
//	  - repeat: {count: 100, for: 5m, rate: 10, steps: [...]}   # rate: iterations/s per connection; neither count nor for: until the run ends
//	  - ping: {timeout: 5s}                            # pong round trip into the step's histogram
//	  - close: {code: 1000, reason: bye}
//	  - reconnect: {min: 100ms, max: 10s, jitter: 0.5, attempts: 5}
//	  - replay: {file: capture.har, url_contains: /socket, speed: 2}
//
// JSON paths are dotted: data.room.id; a number indexes an array (items.0.id).
// Comparisons: == != < <= > >= (or eq ne lt le gt ge) and exists: true|false.
// A message that no expect is waiting for, or that does not match the one
// waiting, is counted as unmatched; in a strict flow it is an error.
//
// Templates (send payloads, ping data, header values) are compiled once;
// expanding one appends to a buffer without allocating:
//
//	${conn}           connection number          ${seq}            sequence number of the message
//	${now.ms}         unix time, milliseconds    ${now.ns}         unix time, nanoseconds
//	${now.rfc3339}    2024-05-31T16:08:37.201Z   ${uuid}           random UUID (version 4)
//	${rand.int 1 100} random integer in [1,100]  ${rand.str 16}    16 random letters and digits
//	${env.TOKEN}      environment variable, read when the scenario is loaded (${TOKEN} works too)
//	${row.user}       column "user" of this connection's CSV row
//	${var.token}      a value captured by an earlier step of the same flow
//	$$                a literal $
//
// In a json: payload written as YAML, expanded values are escaped for JSON,
// and a string that is exactly one numeric placeholder ("${seq}") becomes a
// JSON number. A json: payload written as a JSON string (json: '{"a": 1}') is
// expanded as is, without escaping. Quote YAML values that contain { or },
// as in send: {text: "id ${conn}"}.
//
// Payload files, data files and captures are sent to the target, so they
// must lie in the scenario file's directory or below it (an absolute path,
// a ../ path or a symlink leading out is an error) unless
// Options.AllowOutsideFiles, which `wsload run` and `check` set with
// --allow-outside-files. A payload file holds at most MaxPayloadFile bytes.
// Plan.Files lists every file read and whether it lies outside.
//
// Validation runs before anything is sent and reports every problem as
// file:line:col: message (hint: …): unknown keys (with the closest known
// one), wrong types, bad durations, undefined variables, marks, columns and
// environment variables, unreachable steps (after a close with no reconnect,
// or after a repeat that never ends), non-positive weights, phases without a
// duration.
package scenario
