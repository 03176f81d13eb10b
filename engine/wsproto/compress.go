package wsproto

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultCompressionLevel is the flate level a zero Compressor uses. A load
// generator spends its CPU on sending, so it favours speed over ratio.
const DefaultCompressionLevel = flate.BestSpeed

// deflateTail is the empty stored block a sync flush ends with; RFC 7692
// section 7.2.1 strips it from every message and section 7.2.2 restores it.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is what the receiver appends: the stripped sync-flush block,
// then a final empty stored block so the flate reader reports io.EOF at the
// end of the message instead of io.ErrUnexpectedEOF.
const inflateTail = "\x00\x00\xff\xff" + "\x01\x00\x00\xff\xff"

// Compressor produces permessage-deflate messages with no context takeover:
// each message is compressed from a fresh state, so one Compressor can serve
// many connections one message at a time (pool it: a flate writer holds
// several hundred KiB). The zero value uses DefaultCompressionLevel. It is not
// safe for concurrent use.
type Compressor struct {
	level int
	set   bool // level was chosen by NewCompressor
	fw    *flate.Writer
	out   bytes.Buffer
}

// NewCompressor returns a Compressor using a compress/flate level
// (flate.HuffmanOnly through flate.BestCompression).
func NewCompressor(level int) (*Compressor, error) {
	if level < flate.HuffmanOnly || level > flate.BestCompression {
		return nil, fmt.Errorf("wsproto: compression level %d outside [%d, %d]", level, flate.HuffmanOnly, flate.BestCompression)
	}
	return &Compressor{level: level, set: true}, nil
}

// AppendMessage compresses payload as one whole message and appends it to dst
// as a single masked frame with FIN and RSV1 set. op must be OpText or
// OpBinary: RFC 7692 compresses data messages only.
func (c *Compressor) AppendMessage(dst []byte, op Opcode, payload []byte, mask [4]byte) ([]byte, error) {
	if op != OpText && op != OpBinary {
		return dst, fmt.Errorf("wsproto: cannot compress a %v message", op)
	}
	if c.fw == nil {
		level := c.level
		if !c.set {
			level = DefaultCompressionLevel
		}
		fw, err := flate.NewWriter(&c.out, level)
		if err != nil {
			return dst, fmt.Errorf("wsproto: %w", err)
		}
		c.fw = fw
	}
	c.out.Reset()
	c.fw.Reset(&c.out)
	if _, err := c.fw.Write(payload); err != nil {
		return dst, fmt.Errorf("wsproto: deflate: %w", err)
	}
	if err := c.fw.Flush(); err != nil {
		return dst, fmt.Errorf("wsproto: deflate: %w", err)
	}
	z := c.out.Bytes()
	if !bytes.HasSuffix(z, deflateTail) {
		// Flush always ends with an empty stored block; anything else is a
		// change in compress/flate we must not paper over.
		return dst, errors.New("wsproto: deflate: sync flush did not end with 00 00 ff ff")
	}
	z = z[:len(z)-len(deflateTail)]
	return appendFrame(dst, finBit|rsv1Bit|byte(op), z, mask), nil
}

// inflater decompresses one message at a time. It is pooled: with no context
// takeover nothing survives between messages, so idle connections need not
// keep a 32 KiB window each.
type inflater struct {
	fr  io.ReadCloser // a flate reader, always reading from src
	src inflateSource
}

var inflaterPool = sync.Pool{New: func() any {
	f := &inflater{}
	f.fr = flate.NewReader(&f.src)
	return f
}}

// inflateSource serves a compressed message followed by inflateTail without
// copying the message. It implements io.ByteReader so that flate reads from
// it directly instead of wrapping it in a bufio.Reader (an allocation).
type inflateSource struct {
	p    []byte
	tail int // bytes of inflateTail already served
}

func (s *inflateSource) Read(b []byte) (int, error) {
	if len(s.p) > 0 {
		n := copy(b, s.p)
		s.p = s.p[n:]
		return n, nil
	}
	if s.tail == len(inflateTail) {
		return 0, io.EOF
	}
	n := copy(b, inflateTail[s.tail:])
	s.tail += n
	return n, nil
}

func (s *inflateSource) ReadByte() (byte, error) {
	if len(s.p) > 0 {
		c := s.p[0]
		s.p = s.p[1:]
		return c, nil
	}
	if s.tail == len(inflateTail) {
		return 0, io.EOF
	}
	c := inflateTail[s.tail]
	s.tail++
	return c, nil
}

// errInflateTooBig reports that a message inflated past the size limit.
var errInflateTooBig = errors.New("inflated message too big")

// inflate appends the decompression of the permessage-deflate payload z to
// dst. It stops with errInflateTooBig once the output would exceed limit
// bytes, so a small compressed bomb cannot make us allocate its full size.
func inflate(dst, z []byte, limit int) ([]byte, error) {
	f := inflaterPool.Get().(*inflater)
	defer inflaterPool.Put(f)
	f.src = inflateSource{p: z}
	if err := f.fr.(flate.Resetter).Reset(&f.src, nil); err != nil {
		return dst, err
	}
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			if len(dst)-start > limit {
				return dst, errInflateTooBig
			}
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := f.fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst, errInflateTooBig
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
