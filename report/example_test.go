package report_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/wsload/wsload/report"
	"github.com/wsload/wsload/stats"
)

// The .hgrm of a histogram of 1..1000 µs, in milliseconds. Its lines fall
// on HdrHistogram's reporting ticks (five per halving of the distance to
// 100%); here the header, the ticks around the 99th percentile and the
// footer.
func ExampleWriteHgrm() {
	h := stats.NewHistogram()
	for v := 1; v <= 1000; v++ {
		stats.Record(h, time.Duration(v)*time.Microsecond)
	}
	var b strings.Builder
	if err := report.WriteHgrm(&b, h); err != nil {
		fmt.Println(err)
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if strings.Contains(line, "Value") || strings.Contains(line, " 0.98906") || strings.Contains(line, " 0.99062") || strings.HasPrefix(line, "#[") {
			fmt.Println(line)
		}
	}
	// Output:
	//        Value     Percentile TotalCount 1/(1-Percentile)
	//        0.990 0.989062500000        990          91.43
	//        0.991 0.990625000000        991         106.67
	// #[Mean    =        0.500, StdDeviation   =        0.289]
	// #[Max     =        1.000, Total count    =         1000]
	// #[Buckets =           22, SubBuckets     =         2048]
}

// Knee is the capacity: the highest level of the unbroken run of levels
// that met the SLO.
func ExampleKnee() {
	k, ok := report.Knee([]report.CapacityPoint{
		{Level: 10_000, P99US: 12_000, OK: true},
		{Level: 20_000, P99US: 31_000, OK: true},
		{Level: 30_000, P99US: 240_000, ErrorsPct: 3.5, OK: false},
	})
	fmt.Println(k.Level, ok)
	// Output: 20000 true
}
