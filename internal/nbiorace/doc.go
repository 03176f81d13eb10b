// Package nbiorace gives the race detector the happens-before edge that nbio's accept-to-poller
// hand-off has but cannot show. Every nbio server wsload starts, in the product and in tests,
// calls Install once before Start:
//
//	e := nbhttp.NewEngine(cfg)
//	nbiorace.Install(e)
//	err := e.Start()
//
// Outside `-race` builds Install is a no-op that the compiler removes.
package nbiorace
