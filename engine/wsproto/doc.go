// Package wsproto is the client side of the WebSocket protocol (RFC 6455) with
// permessage-deflate (RFC 7692, no context takeover) as pure codecs: no I/O, no
// goroutines, no event loop. The engine owns the socket; it writes the bytes
// this package appends and feeds the bytes it reads into a Reader.
//
// A connection's life, as the engine drives it:
//
//	req := &wsproto.Request{URL: u, Compression: true, Key: wsproto.NewKey()}
//	if err := req.Validate(); err != nil { ... }          // once per template
//	out = wsproto.AppendRequest(out[:0], req)            // write out
//
//	// bytes arrive in in[:n]; repeat until the head is complete
//	resp, used, err := wsproto.ParseResponse(in[:n])
//	if used == 0 && err == nil { /* read more, append, retry */ }
//	proto, deflate, err := wsproto.CheckUpgrade(req, resp) // *UpgradeError for non-101
//
//	rd := &wsproto.Reader{Compression: deflate, ValidateUTF8: true}
//	err = rd.Feed(in[used:n], handler)                     // frames may follow the head
//	...
//	out = wsproto.AppendFrame(out[:0], wsproto.OpText, true, msg, mask)
//	out = wsproto.AppendClose(out[:0], wsproto.CloseNormal, "", mask)
//
// Hot-path invariants: Reader.Feed hands out sub-slices of the data it was
// given whenever a frame arrived whole, and copies only partial frames and
// fragmented messages; Feed, AppendFrame and Compressor.AppendMessage do not
// allocate in steady state when the caller reuses dst. Payloads given to a
// Handler are valid only during the call.
package wsproto
