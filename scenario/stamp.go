package scenario

import (
	"bytes"
	"strconv"
)

// Fan-out stamps. A publisher's send step with `stamp: true` puts its
// connection number, sequence number and send time into the message:
//
//	JSON object payload:  {"wsl-stamp":"7-42-1700000000123456789", …the payload's fields}
//	text or binary:       wsl-stamp:7-42-1700000000123456789 …the payload
//
// Subscribers' expect steps with `stamped: true` find the stamp in whatever
// the server delivers (the message as sent, wrapped in another object, or
// escaped inside a JSON string) and measure delivery latency from the send
// time in it. The send time is the publisher's clock: one-to-many latency
// measured across machines is only as good as their clock synchronisation
// (NTP within a LAN is typically 0.1-1 ms; use PTP or run publishers and
// subscribers on one host for sub-millisecond figures).

// StampKey is the marker a stamp starts with.
const StampKey = "wsl-stamp"

// AppendStamp appends the stamp value "<conn>-<seq>-<unix ns>".
func AppendStamp(dst []byte, conn, seq uint64, sentUnixNano int64) []byte {
	dst = strconv.AppendUint(dst, conn, 10)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, sentUnixNano, 10)
}

// ParseStamp returns the send time carried by a stamped message.
func ParseStamp(msg []byte) (sendUnixNano int64, ok bool) {
	_, _, ns, ok := ParseStampID(msg)
	return ns, ok
}

// ParseStampID returns the whole stamp: the publisher's connection and
// sequence numbers (to tell duplicates apart) and its send time. It accepts
// the stamp as sent and escaped inside a JSON string (\"wsl-stamp\":\"…\").
func ParseStampID(msg []byte) (conn, seq uint64, sendUnixNano int64, ok bool) {
	for off := 0; off < len(msg); {
		i := bytes.Index(msg[off:], []byte(StampKey))
		if i < 0 {
			return 0, 0, 0, false
		}
		j := off + i + len(StampKey)
		off = j
		// Between the key and the value: quotes, backslashes, a colon and spaces.
		for k := 0; k < 8 && j < len(msg) && (msg[j] == '"' || msg[j] == '\\' || msg[j] == ':' || msg[j] == ' '); k++ {
			j++
		}
		var c, s, n uint64
		var good bool
		if c, j, good = parseUint(msg, j); !good || j >= len(msg) || msg[j] != '-' {
			continue
		}
		if s, j, good = parseUint(msg, j+1); !good || j >= len(msg) || msg[j] != '-' {
			continue
		}
		if n, _, good = parseUint(msg, j+1); !good || n > 1<<63-1 {
			continue
		}
		return c, s, int64(n), true
	}
	return 0, 0, 0, false
}

// parseUint reads decimal digits at msg[i:], refusing overflow.
func parseUint(msg []byte, i int) (uint64, int, bool) {
	start := i
	var v uint64
	for i < len(msg) && msg[i] >= '0' && msg[i] <= '9' && i-start < 20 {
		d := uint64(msg[i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, i, false
		}
		v = v*10 + d
		i++
	}
	return v, i, i > start
}
