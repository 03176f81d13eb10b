// Package scenario describes what each connection of a load test does.
//
// The core ships one built-in flow, Echo: every connection sends a message
// at a fixed rate (open model) and expects the same bytes back. Each message
// carries the sending connection's number and a sequence number, so replies
// are matched by id, never by assuming the server answers in order:
//
//	e := scenario.Echo{Size: 64}
//	msg := e.AppendMessage(nil, 7, 42)      // connection 7, sequence 42
//	conn, seq, ok := e.ParseID(msg)         // 7, 42, true
//
// The scenario language (phases, weighted flows, steps) builds on this.
package scenario

import (
	"encoding/binary"
	"fmt"
)

// Echo is the built-in echo flow's message format.
//
// Text messages start with "wsl1" + 8 hex digits of connection number + 16 hex
// digits of sequence number (28 bytes); binary messages start with "wsl\x01" +
// 4 bytes connection + 8 bytes sequence, big endian (16 bytes). The rest of
// the message is padding up to Size bytes.
type Echo struct {
	Size   int  // message size in bytes, at least the header size
	Binary bool // binary frames instead of text
}

const (
	textHeader   = 28
	binaryHeader = 16
	hexDigits    = "0123456789abcdef"
)

// HeaderSize is the smallest message that can carry the id.
func (e Echo) HeaderSize() int {
	if e.Binary {
		return binaryHeader
	}
	return textHeader
}

// Validate reports whether Size can carry the id.
func (e Echo) Validate() error {
	if e.Size < e.HeaderSize() {
		kind := "text"
		if e.Binary {
			kind = "binary"
		}
		return fmt.Errorf("scenario: message size %d is too small: a %s echo message carries its id in %d bytes", e.Size, kind, e.HeaderSize())
	}
	return nil
}

// AppendMessage appends the message for (conn, seq) to dst. It does not allocate
// when dst has room for Size bytes.
func (e Echo) AppendMessage(dst []byte, conn uint32, seq uint64) []byte {
	start := len(dst)
	if e.Binary {
		dst = append(dst, 'w', 's', 'l', 1)
		dst = binary.BigEndian.AppendUint32(dst, conn)
		dst = binary.BigEndian.AppendUint64(dst, seq)
	} else {
		dst = append(dst, 'w', 's', 'l', '1')
		for shift := 28; shift >= 0; shift -= 4 {
			dst = append(dst, hexDigits[(conn>>uint(shift))&0xf])
		}
		for shift := 60; shift >= 0; shift -= 4 {
			dst = append(dst, hexDigits[(seq>>uint(shift))&0xf])
		}
	}
	for len(dst)-start < e.Size {
		dst = append(dst, padding[(len(dst)-start)%len(padding)])
	}
	return dst
}

// padding is printable so text messages stay valid UTF-8.
const padding = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

// ParseID extracts (conn, seq) from a message made by AppendMessage, in either
// encoding. ok is false for any other message (server pushes, greetings).
func ParseID(msg []byte) (conn uint32, seq uint64, ok bool) {
	if len(msg) >= binaryHeader && msg[0] == 'w' && msg[1] == 's' && msg[2] == 'l' && msg[3] == 1 {
		return binary.BigEndian.Uint32(msg[4:8]), binary.BigEndian.Uint64(msg[8:16]), true
	}
	if len(msg) < textHeader || msg[0] != 'w' || msg[1] != 's' || msg[2] != 'l' || msg[3] != '1' {
		return 0, 0, false
	}
	var c uint64
	for _, b := range msg[4:12] {
		v, good := unhex(b)
		if !good {
			return 0, 0, false
		}
		c = c<<4 | v
	}
	for _, b := range msg[12:28] {
		v, good := unhex(b)
		if !good {
			return 0, 0, false
		}
		seq = seq<<4 | v
	}
	return uint32(c), seq, true
}

func unhex(b byte) (uint64, bool) {
	switch {
	case b >= '0' && b <= '9':
		return uint64(b - '0'), true
	case b >= 'a' && b <= 'f':
		return uint64(b-'a') + 10, true
	}
	return 0, false
}
