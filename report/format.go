package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/wsload/wsload/stats"
)

// fmtUS formats microseconds as every wsload report does (stats.FormatUS).
func fmtUS(us int64) string { return stats.FormatUS(us) }

// fmtCount formats a count or level with thousands separators: 12,000;
// fractional values keep one decimal.
func fmtCount(v float64) string {
	if v != math.Trunc(v) && math.Abs(v) < 1e15 {
		return groupThousands(strconv.FormatFloat(v, 'f', 1, 64))
	}
	return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
}

func fmtInt(n int64) string { return groupThousands(strconv.FormatInt(n, 10)) }

// fmtRate formats a per-second rate: 12,345/s, 12.5/s.
func fmtRate(v float64) string {
	if v >= 100 {
		return groupThousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64)) + "/s"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
}

func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if frac != "" {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

// fmtBytes formats a byte count as the text summary does (stats.FormatBytes).
func fmtBytes(n int64) string { return stats.FormatBytes(n) }

// fmtSeconds formats a duration given in seconds: 30s, 2.5s, 1m30s.
func fmtSeconds(s float64) string {
	switch {
	case s >= 60:
		m := math.Floor(s / 60)
		return fmt.Sprintf("%.0fm%.0fs", m, s-60*m)
	case s == math.Trunc(s):
		return fmt.Sprintf("%.0fs", s)
	}
	return fmt.Sprintf("%.2fs", s)
}

// closeCodeName names the common WebSocket close codes, as the text
// summary does.
func closeCodeName(code int) string { return stats.CloseCodeName(code) }
