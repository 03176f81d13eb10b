// Package buildinfo says which wsload produced a result: the version recorded in every Result and
// printed by `wsload version`.
//
// A release build sets it with
//
//	go build -ldflags "-X github.com/wsload/wsload/internal/buildinfo.version=v1.2.3" ./cmd/wsload
//
// Without that, the module version Go recorded in the binary is used (a `go install
// github.com/wsload/wsload/cmd/wsload@v1.2.3`, or a program that imports the engine at a tagged
// version), and "dev" for a build from a checkout.
package buildinfo

import "runtime/debug"

// version is set with -ldflags -X; empty means "ask the build info".
var version string

const module = "github.com/wsload/wsload"

// Version is the version of the wsload code in this binary.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	v := ""
	if bi.Main.Path == module {
		v = bi.Main.Version
	} else {
		for _, d := range bi.Deps {
			if d.Path == module {
				v = d.Version
				if d.Replace != nil {
					v = d.Replace.Version
				}
				break
			}
		}
	}
	if v == "" || v == "(devel)" {
		return "dev"
	}
	return v
}
