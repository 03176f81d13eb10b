package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// fmtUS formats microseconds in a human unit with about three significant
// digits, the histograms' precision: 850µs, 1.23ms, 12.3ms, 1.23s. It
// matches the text summary (stats.WriteText).
func fmtUS(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return sig3(float64(us)/1e3) + "ms"
	default:
		return sig3(float64(us)/1e6) + "s"
	}
}

func sig3(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

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

// fmtBytes formats a byte count in binary units: 512 B, 3.05 MiB.
func fmtBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	unit := ""
	for _, unit = range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 {
			break
		}
	}
	return sig3(v) + " " + unit
}

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

// closeCodeName names the WebSocket close codes a load test commonly sees
// (RFC 6455 section 7.4.1), as the text summary does.
func closeCodeName(code int) string {
	switch code {
	case 1000:
		return "normal"
	case 1001:
		return "going away"
	case 1002:
		return "protocol error"
	case 1003:
		return "unsupported data"
	case 1005:
		return "no status"
	case 1006:
		return "abnormal, no close frame"
	case 1007:
		return "invalid payload"
	case 1008:
		return "policy violation"
	case 1009:
		return "message too big"
	case 1011:
		return "server error"
	case 1012:
		return "service restart"
	case 1013:
		return "try again later"
	}
	return ""
}
