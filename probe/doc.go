// Package probe checks one WebSocket endpoint the way the classic browser test page does —
// connect, say "hello server", show what comes back, close — and explains in plain words what
// went wrong when it does not work. It is what `wsload probe` runs.
//
// Every phase is timed and recorded: DNS resolution, TCP connect, TLS (version, cipher, ALPN,
// certificate and verification result), the upgrade request and response, an optional
// greeting from the server, one message exchange, an optional idle hold (how balancers'
// idle timeouts are found) and the close handshake.
//
//	rep, err := probe.Run(ctx, probe.Options{
//		URL:     "wss://example.test:8443/ws",
//		Message: probe.DefaultMessage,
//		Idle:    90 * time.Second, // hold the connection idle: does the balancer cut it?
//	})
//	if err != nil {
//		return err // invalid options, or ctx ended
//	}
//	rep.WriteText(os.Stdout)
//	if d := rep.Diagnosis(); d != nil {
//		fmt.Println(d.Fault, d.Summary, d.Hint) // e.g. "refused", "nothing listens on …"
//	}
//
// Faults the target or the network cause (refused connection, bad certificate, a 502 from
// the balancer, no reply, an idle cut) are not errors of Run: they are Diagnoses in the
// Report, each with a stable Fault name for scripts. Run uses the blocking standard library
// (one connection; clarity beats the event loop here) and engine/wsproto for the handshake and
// the frames, so it speaks exactly the protocol the load generator speaks.
package probe
