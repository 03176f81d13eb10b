//go:build !race

package server

import "github.com/lesismal/nbio/nbhttp"

// installRaceHandoff is a no-op outside race builds; see race_on.go.
func installRaceHandoff(*nbhttp.Engine) {}
