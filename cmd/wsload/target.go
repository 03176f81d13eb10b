package main

import (
	"fmt"
	"net/url"
	"strings"
)

// checkTarget refuses a target that is not a ws:// or wss:// URL with a hint that names the URL
// the user most likely meant: `wsload run 127.0.0.1:8080` would otherwise fail deep in URL
// parsing ("first path segment in URL cannot contain colon").
func checkTarget(arg string) error {
	u, err := url.Parse(arg)
	scheme := ""
	if err == nil {
		scheme = strings.ToLower(u.Scheme)
	}
	switch {
	case !strings.Contains(arg, "://"):
		return fmt.Errorf("target %q is not a URL: did you mean ws://%s?", arg, withPath(arg))
	case scheme == "http":
		return fmt.Errorf("target %q: WebSocket URLs start with ws:// (http:// is for pages): did you mean %s?", arg, "ws"+arg[len("http"):])
	case scheme == "https":
		return fmt.Errorf("target %q: WebSocket URLs start with wss:// (https:// is for pages): did you mean %s?", arg, "wss"+arg[len("https"):])
	case err != nil:
		return fmt.Errorf("target %q is not a valid URL: %w", arg, err)
	case scheme != "ws" && scheme != "wss":
		return fmt.Errorf("target %q: the scheme must be ws:// or wss://", arg)
	case u.Hostname() == "":
		return fmt.Errorf("target %q has no host: e.g. ws://127.0.0.1:8080/", arg)
	}
	return nil
}

// withPath adds the root path to host[:port] when it has none.
func withPath(hostport string) string {
	if strings.Contains(hostport, "/") {
		return hostport
	}
	return hostport + "/"
}
