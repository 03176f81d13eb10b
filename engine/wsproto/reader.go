package wsproto

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxMessageSize is the message size limit of a Reader whose
// MaxMessageSize is 0.
const DefaultMaxMessageSize = 16 << 20

// retainLimit caps the buffers a Reader keeps between messages. Most
// connections of a load test exchange small messages that arrive whole and
// need no buffer at all; a rare large message should not pin its buffer on
// every one of 100k idle connections.
const retainLimit = 64 << 10

// maxPrealloc caps the buffer sized from a frame header alone: a header
// announcing 16 MiB should not cost 16 MiB before the bytes arrive. Larger
// frames grow the buffer as their bytes come in.
const maxPrealloc = 1 << 20

// Handler receives what a Reader parsed. Payloads are valid only during the
// call: they point into the data given to Feed or into the Reader's buffers.
type Handler interface {
	// OnMessage receives a complete text or binary message, reassembled
	// from its fragments and inflated if it was compressed.
	OnMessage(op Opcode, payload []byte)
	OnPing(payload []byte)
	OnPong(payload []byte)
	// OnClose receives the close frame's status; code is CloseNoStatus
	// (1005) when the frame had no payload.
	OnClose(code int, reason string)
}

// ProtocolError is a violation of RFC 6455/7692 by the server. Code is the
// close code the client should send back before dropping the connection.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return "wsproto: protocol error " + strconv.Itoa(e.Code) + ": " + e.Reason
}

// Reader is an incremental parser of server-to-client frames. Configure the
// exported fields before the first Feed. A Reader is not safe for concurrent
// use; one connection owns one Reader.
type Reader struct {
	// MaxMessageSize bounds a message (after reassembly and inflation) in
	// bytes; 0 means DefaultMaxMessageSize. Larger messages fail with
	// ProtocolError code 1009.
	MaxMessageSize int
	// Compression is set once permessage-deflate was negotiated: messages
	// whose first frame has RSV1 set are inflated. Without it RSV1 is a
	// protocol error.
	Compression bool
	// ValidateUTF8 checks text messages and close reasons; invalid UTF-8
	// fails with code 1007.
	ValidateUTF8 bool

	// partial holds the start of a frame that did not arrive whole.
	partial []byte
	// msg accumulates the fragments of a fragmented message.
	msg        []byte
	fragmented bool
	fragOp     Opcode
	fragZ      bool // the fragmented message is compressed
	// inflated is the output buffer for compressed messages.
	inflated []byte

	closed bool  // a close frame was received; later bytes are ignored
	err    error // sticky: the Reader is unusable after a protocol error
}

// header is a parsed frame header.
type header struct {
	b0   byte
	hlen int // header length including the mask key
	plen int // payload length
}

func (h header) fin() bool  { return h.b0&finBit != 0 }
func (h header) op() Opcode { return Opcode(h.b0 & 0x0f) }
func (h header) rsv1() bool { return h.b0&rsv1Bit != 0 }
func (h header) total() int { return h.hlen + h.plen }

// headerLen returns the header length announced by the first two bytes.
func headerLen(b0, b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&maskBit != 0 {
		n += 4
	}
	return n
}

// Feed parses data, continuing any frame left partial by earlier calls, and
// calls h for every complete control frame and message. Frames that arrive
// whole are handed out as sub-slices of data without copying; only a trailing
// partial frame is kept (copied) for the next call.
//
// It returns a *ProtocolError when the server violates the protocol; the
// Reader then stays failed and returns the same error from every later call.
// Bytes after a close frame are ignored. Errors do not depend on how the
// stream was split: a frame is checked as soon as its header is complete.
func (r *Reader) Feed(data []byte, h Handler) error {
	if r.err != nil {
		return r.err
	}
	if r.closed {
		return nil
	}
	if len(r.partial) > 0 {
		var ok bool
		data, ok = r.completePartial(data, h)
		if r.err != nil {
			return r.err
		}
		if !ok || r.closed {
			return nil
		}
	}
	for len(data) > 0 {
		if len(data) < 2 {
			r.keep(data, 0)
			return nil
		}
		hl := headerLen(data[0], data[1])
		if len(data) < hl {
			r.keep(data, 0)
			return nil
		}
		hd, err := r.parseHeader(data[:hl])
		if err != nil {
			return r.fail(err)
		}
		if len(data) < hd.total() {
			r.keep(data, hd.total())
			return nil
		}
		r.frame(hd, data[hl:hd.total()], h)
		if r.err != nil {
			return r.err
		}
		if r.closed {
			return nil
		}
		data = data[hd.total():]
	}
	return nil
}

// keep stores the start of a frame that did not arrive whole. When the total
// frame length is already known the buffer is sized for it once.
func (r *Reader) keep(data []byte, total int) {
	if size := min(total, maxPrealloc); size > cap(r.partial) {
		r.partial = make([]byte, 0, max(size, len(data)))
	}
	r.partial = append(r.partial[:0], data...)
}

// completePartial moves bytes from data into r.partial until the pending frame
// is whole, then handles it. It returns the unconsumed rest of data and
// whether the frame was completed.
func (r *Reader) completePartial(data []byte, h Handler) ([]byte, bool) {
	for len(r.partial) < 2 {
		if len(data) == 0 {
			return data, false
		}
		r.partial = append(r.partial, data[0])
		data = data[1:]
	}
	hl := headerLen(r.partial[0], r.partial[1])
	if need := hl - len(r.partial); need > 0 {
		take := min(need, len(data))
		r.partial = append(r.partial, data[:take]...)
		data = data[take:]
		if take < need {
			return data, false
		}
	}
	hd, err := r.parseHeader(r.partial[:hl])
	if err != nil {
		r.fail(err)
		return data, false
	}
	need := hd.total() - len(r.partial)
	if need > 0 {
		if size := min(hd.total(), maxPrealloc); cap(r.partial) < size {
			grown := make([]byte, len(r.partial), size)
			copy(grown, r.partial)
			r.partial = grown
		}
		take := min(need, len(data))
		r.partial = append(r.partial, data[:take]...)
		data = data[take:]
		if take < need {
			return data, false
		}
	}
	frame := r.partial
	r.partial = r.partial[:0]
	r.frame(hd, frame[hl:], h)
	if cap(r.partial) > retainLimit {
		r.partial = nil
	}
	return data, true
}

func (r *Reader) fail(err *ProtocolError) error {
	r.err = err
	r.partial, r.msg, r.inflated = nil, nil, nil
	return err
}

func (r *Reader) maxSize() int {
	if r.MaxMessageSize > 0 {
		return r.MaxMessageSize
	}
	return DefaultMaxMessageSize
}

// parseHeader decodes a complete header and checks everything that can be
// checked before the payload arrives, against the current fragmentation
// state, so that violations are found at the same point however the stream
// was split.
func (r *Reader) parseHeader(b []byte) (header, *ProtocolError) {
	hd := header{b0: b[0], hlen: len(b)}
	b1 := b[1]
	if b1&maskBit != 0 {
		return hd, &ProtocolError{CloseProtocolError, "masked frame from server"}
	}
	switch n := b1 & 0x7f; n {
	case 126:
		hd.plen = int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		n64 := binary.BigEndian.Uint64(b[2:])
		if n64>>63 != 0 {
			return hd, &ProtocolError{CloseProtocolError, "64-bit payload length with the most significant bit set"}
		}
		if n64 > uint64(r.maxSize()) {
			return hd, &ProtocolError{CloseMessageTooBig, "frame of " + strconv.FormatUint(n64, 10) + " bytes exceeds the message size limit"}
		}
		hd.plen = int(n64)
	default:
		hd.plen = int(n)
	}
	op := hd.op()
	if hd.b0&(rsv2Bit|rsv3Bit) != 0 {
		return hd, &ProtocolError{CloseProtocolError, "RSV2/RSV3 set without a negotiated extension"}
	}
	if op.IsControl() {
		switch op {
		case OpClose, OpPing, OpPong:
		default:
			return hd, &ProtocolError{CloseProtocolError, "reserved opcode " + strconv.Itoa(int(op))}
		}
		if !hd.fin() {
			return hd, &ProtocolError{CloseProtocolError, "fragmented " + op.String() + " frame"}
		}
		if hd.plen > MaxControlPayload {
			return hd, &ProtocolError{CloseProtocolError, op.String() + " frame longer than 125 bytes"}
		}
		if hd.rsv1() {
			return hd, &ProtocolError{CloseProtocolError, "RSV1 set on a control frame"}
		}
		return hd, nil
	}
	switch op {
	case OpContinuation:
		if !r.fragmented {
			return hd, &ProtocolError{CloseProtocolError, "continuation frame without a message to continue"}
		}
		if hd.rsv1() {
			return hd, &ProtocolError{CloseProtocolError, "RSV1 set on a continuation frame"}
		}
	case OpText, OpBinary:
		if r.fragmented {
			return hd, &ProtocolError{CloseProtocolError, "new data frame inside a fragmented message"}
		}
		if hd.rsv1() && !r.Compression {
			return hd, &ProtocolError{CloseProtocolError, "RSV1 set without permessage-deflate"}
		}
	default:
		return hd, &ProtocolError{CloseProtocolError, "reserved opcode " + strconv.Itoa(int(op))}
	}
	if size := len(r.msg) + hd.plen; size > r.maxSize() {
		return hd, &ProtocolError{CloseMessageTooBig, "message of at least " + strconv.Itoa(size) + " bytes exceeds the message size limit"}
	}
	return hd, nil
}

// frame handles one complete frame whose header passed parseHeader.
func (r *Reader) frame(hd header, payload []byte, h Handler) {
	switch op := hd.op(); op {
	case OpPing:
		h.OnPing(payload)
	case OpPong:
		h.OnPong(payload)
	case OpClose:
		r.closeFrame(payload, h)
	case OpText, OpBinary:
		if hd.fin() {
			r.message(op, hd.rsv1(), payload, h)
			return
		}
		r.fragmented, r.fragOp, r.fragZ = true, op, hd.rsv1()
		r.msg = append(r.msg[:0], payload...)
	case OpContinuation:
		r.msg = append(r.msg, payload...)
		if !hd.fin() {
			return
		}
		r.fragmented = false
		r.message(r.fragOp, r.fragZ, r.msg, h)
		r.msg = r.msg[:0]
		if cap(r.msg) > retainLimit {
			r.msg = nil
		}
	}
}

// message delivers a complete data message, inflating and validating it.
func (r *Reader) message(op Opcode, compressed bool, payload []byte, h Handler) {
	if compressed {
		out, err := inflate(r.inflated[:0], payload, r.maxSize())
		if err != nil {
			if errors.Is(err, errInflateTooBig) {
				r.fail(&ProtocolError{CloseMessageTooBig, "inflated message exceeds the message size limit"})
				return
			}
			r.fail(&ProtocolError{CloseInvalidPayload, "permessage-deflate: " + err.Error()})
			return
		}
		payload = out
		r.inflated = out[:0]
		if cap(out) > retainLimit {
			r.inflated = nil // payload still points at out for the call below
		}
	}
	if op == OpText && r.ValidateUTF8 && !utf8.Valid(payload) {
		r.fail(&ProtocolError{CloseInvalidPayload, "text message is not valid UTF-8"})
		return
	}
	h.OnMessage(op, payload)
}

// closeFrame parses a close payload: empty, or a 2-byte code and a UTF-8
// reason.
func (r *Reader) closeFrame(payload []byte, h Handler) {
	code := CloseNoStatus
	var reason string
	switch len(payload) {
	case 0:
	case 1:
		r.fail(&ProtocolError{CloseProtocolError, "close frame with a 1-byte payload"})
		return
	default:
		code = int(binary.BigEndian.Uint16(payload))
		if !validCloseCode(code) {
			r.fail(&ProtocolError{CloseProtocolError, "invalid close code " + strconv.Itoa(code)})
			return
		}
		if r.ValidateUTF8 && !utf8.Valid(payload[2:]) {
			r.fail(&ProtocolError{CloseInvalidPayload, "close reason is not valid UTF-8"})
			return
		}
		reason = string(payload[2:])
	}
	r.closed = true
	r.partial, r.msg, r.inflated = nil, nil, nil
	h.OnClose(code, reason)
}

// Reset returns the Reader to its initial state, keeping its configuration
// and small buffers, so that it can serve a new connection.
func (r *Reader) Reset() {
	*r = Reader{
		MaxMessageSize: r.MaxMessageSize,
		Compression:    r.Compression,
		ValidateUTF8:   r.ValidateUTF8,
		partial:        r.partial[:0],
		msg:            r.msg[:0],
		inflated:       r.inflated[:0],
	}
}
