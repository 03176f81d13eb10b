package wsproto

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Opcode is a WebSocket frame opcode (RFC 6455 section 5.2).
type Opcode byte

// The opcodes RFC 6455 defines; 0x3–0x7 and 0xB–0xF are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// String names the opcode as RFC 6455 does ("text", "close", …).
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode(" + strconv.Itoa(int(op)) + ")"
}

// IsControl reports whether op is a control opcode (close, ping, pong and the
// reserved 0xB–0xF), which may not be fragmented and carry at most 125 bytes.
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// Close status codes (RFC 6455 section 7.4.1 and the IANA registry).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005 // never on the wire: reported when a close frame had no payload
	CloseAbnormal        = 1006 // never on the wire: the connection dropped without a close frame
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseMessageTooBig   = 1009
	CloseMandatoryExt    = 1010
	CloseInternalError   = 1011
)

// MaxControlPayload is the largest payload a control frame may carry.
const MaxControlPayload = 125

// Frame header bits.
const (
	finBit  = 0x80
	rsv1Bit = 0x40
	rsv2Bit = 0x20
	rsv3Bit = 0x10
	maskBit = 0x80
)

// MaxHeaderSize is the longest frame header a client writes: two bytes, an
// eight-byte extended length and the four-byte masking key.
const MaxHeaderSize = 14

// AppendFrame appends one masked client frame to dst and returns the extended
// slice. Clients must mask every frame (RFC 6455 section 5.3); the mask comes
// from the caller so that tests are deterministic and the engine can use a
// cheap per-connection PRNG. It does not allocate when dst has room.
func AppendFrame(dst []byte, op Opcode, fin bool, payload []byte, mask [4]byte) []byte {
	b0 := byte(op) & 0x0f
	if fin {
		b0 |= finBit
	}
	return appendFrame(dst, b0, payload, mask)
}

// appendFrame writes the header (first byte b0 given), the mask key and the
// masked payload.
func appendFrame(dst []byte, b0 byte, payload []byte, mask [4]byte) []byte {
	dst = appendHeader(dst, b0, len(payload), mask)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(dst[start:], mask)
	return dst
}

func appendHeader(dst []byte, b0 byte, n int, mask [4]byte) []byte {
	switch {
	case n <= 125:
		dst = append(dst, b0, maskBit|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, maskBit|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, mask[0], mask[1], mask[2], mask[3])
}

// AppendClose appends a masked close frame carrying code and reason. A code of
// 0 or CloseNoStatus sends an empty close frame (reason ignored), as RFC 6455
// requires when no status is given. The reason is cut to fit a control frame
// (123 bytes), backing off to a UTF-8 boundary so the peer does not fail the
// connection with 1007.
func AppendClose(dst []byte, code int, reason string, mask [4]byte) []byte {
	if code == 0 || code == CloseNoStatus {
		return appendFrame(dst, finBit|byte(OpClose), nil, mask)
	}
	if len(reason) > MaxControlPayload-2 {
		cut := MaxControlPayload - 2
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = appendHeader(dst, finBit|byte(OpClose), 2+len(reason), mask)
	start := len(dst)
	dst = append(dst, byte(code>>8), byte(code))
	dst = append(dst, reason...)
	maskBytes(dst[start:], mask)
	return dst
}

// maskBytes XORs b with the repeating mask key, starting at key offset 0,
// eight bytes at a time.
func maskBytes(b []byte, mask [4]byte) {
	k32 := binary.LittleEndian.Uint32(mask[:])
	k64 := uint64(k32) | uint64(k32)<<32
	for len(b) >= 32 {
		v := binary.LittleEndian.Uint64(b)
		binary.LittleEndian.PutUint64(b, v^k64)
		v = binary.LittleEndian.Uint64(b[8:])
		binary.LittleEndian.PutUint64(b[8:], v^k64)
		v = binary.LittleEndian.Uint64(b[16:])
		binary.LittleEndian.PutUint64(b[16:], v^k64)
		v = binary.LittleEndian.Uint64(b[24:])
		binary.LittleEndian.PutUint64(b[24:], v^k64)
		b = b[32:]
	}
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		binary.LittleEndian.PutUint64(b, v^k64)
		b = b[8:]
	}
	// Fewer than 8 bytes remain; we are still at key offset 0 because every
	// step above consumed a multiple of 4.
	for i := range b {
		b[i] ^= byte(k32 >> (8 * (i & 3)))
	}
}

// validCloseCode reports whether code may appear in a close frame on the wire
// (RFC 6455 section 7.4 and the IANA registry: 1000–1003, 1007–1014, and the
// 3000–4999 ranges for libraries and applications).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
