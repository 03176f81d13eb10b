package stats_test

import (
	"fmt"
	"time"

	"github.com/wsload/wsload/stats"
)

// The engine records into shards, rotates once per second, and folds the
// intervals into a Result.
func Example() {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := stats.NewRecorder(2)
	rec.SetStart(start)
	agg := stats.NewAggregate(start)

	for conn := range 4 {
		sh := rec.Shard(conn)
		sh.ConnAttempted()
		sh.ConnEstablished(800 * time.Microsecond)
		for i := range 100 {
			lag := 10 * time.Microsecond
			sh.Sent(64, lag)
			sh.Received(64)
			service := time.Duration(200+i) * time.Microsecond
			sh.RTT(service+lag, service)
		}
	}
	iv := rec.Rotate(start.Add(time.Second))
	fmt.Println(stats.FormatProgress(iv, time.Second, 10*time.Second))
	agg.Add(iv)

	res := agg.Result(stats.Header{Version: "dev", Target: "ws://127.0.0.1:8080/", Config: stats.Config{Connections: 4, Rate: 100}})
	fmt.Println("received", res.Messages.Received, "rtt p99", res.Latency.RTT.P99US, "µs", "warnings", len(res.Generator.Warnings))
	// Output:
	// [1s/10s] open 4, conn/s 4, sent/s 400, recv/s 400, rtt p50 259µs p99 308µs, errors 0
	// received 400 rtt p99 308 µs warnings 0
}

// Quantile takes percent, not a fraction: p999 is Quantile(h, 99.9).
func ExampleQuantile() {
	h := stats.NewHistogram()
	for v := range 1000 {
		stats.Record(h, time.Duration(v+1)*time.Microsecond)
	}
	for _, p := range stats.Percentiles {
		fmt.Printf("%s=%dµs ", p.Name, stats.Quantile(h, p.Percent))
	}
	fmt.Println()
	// Output:
	// p50=500µs p90=900µs p99=990µs p999=999µs p9999=1000µs
}
