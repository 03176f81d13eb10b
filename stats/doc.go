// Package stats measures a wsload run and reports it: HdrHistograms in
// microseconds, a sharded Recorder the engine writes into from its event
// loops, one-second Intervals (the unit that is streamed, merged across
// processes and machines, and judged), an Aggregate that folds Intervals into
// a Result, and the Result's JSON, text summary and live progress line.
//
// Data flows one way. The engine records and aggregates (engine.New, then
// Run, returns the finished Result); a program that records events of its own
// does the same with these pieces:
//
//	rec := stats.NewRecorder(shards)
//	rec.SetStart(start)
//	sh := rec.Shard(key)                 // one shard per goroutine that records
//	sh.ConnAttempted()
//	sh.ConnEstablished(handshake)
//	sh.Sent(len(msg), actual.Sub(scheduled))
//	sh.Received(len(reply))
//	sh.RTT(now.Sub(scheduled), now.Sub(actual))
//
//	agg := stats.NewAggregate(start)
//	for range ticker.C {                 // once per second, and once at the end
//		iv := rec.Rotate(time.Now())
//		fmt.Fprintln(os.Stderr, stats.FormatProgress(iv, time.Since(start), total))
//		agg.Add(iv)
//	}
//	res := agg.Result(stats.Header{Version: version, Target: url, Start: start, Duration: d, Config: cfg, Generator: gen})
//	_ = stats.WriteJSONFile("result.json", res)
//	_ = stats.WriteText(os.Stdout, res)
//
// Results from several processes or machines (segments of one load, see
// Segment) merge exactly, and runs compare side by side:
//
//	all, err := stats.Merge(seg1, seg2, seg3, seg4) // histograms added, timelines aligned on wall-clock seconds
//	cmp := stats.Compare([]string{"roundrobin", "leastconn"}, []*stats.Result{a, b})
//	_ = cmp.WriteText(os.Stdout)                    // or WriteMarkdown, or JSON
//
// Per-second histograms can also stream to an HdrHistogram interval log
// (.hlog) that HdrHistogram's own tools read: CreateHlog, then WriteInterval
// from a sink of engine.Run; ReadHlog and MergeHlogs read and combine them.
//
// Latencies follow the measurement rules in docs/measurement.md: the corrected RTT is
// measured from a message's scheduled send time (coordinated omission
// corrected), the uncorrected one from its actual send time, and SendLag is the
// difference, the generator's own health. Percentiles are always given in
// percent and named once, in Percentiles.
package stats
