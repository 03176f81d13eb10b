// Package nbiorace gives the race detector the happens-before edge that nbio's accept-to-poller
// hand-off has but cannot show. Every nbio server wsload starts, in the product and in tests,
// calls Install once before Start, in place of the engine's own OnOpen (which it would replace):
//
//	e := nbhttp.NewEngine(cfg)
//	nbiorace.Install(e, onOpen) // onOpen may be nil
//	err := e.Start()
//
// Outside `-race` builds Install only registers onOpen.
package nbiorace
