//go:build !race

package nbiorace

import "github.com/lesismal/nbio/nbhttp"

// Install is a no-op outside race builds; see race_on.go.
func Install(*nbhttp.Engine) {}
