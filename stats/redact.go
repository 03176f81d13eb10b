package stats

import (
	"net/http"
	"net/url"
	"strings"
)

// Redacted replaces secret values in reports.
const Redacted = "[redacted]"

// secretParts are substrings of header and query parameter names whose values
// are treated as secrets. "auth" covers Authorization and
// Proxy-Authorization, "key" X-Api-Key.
var secretParts = []string{"token", "secret", "key", "auth", "pass", "cookie", "session", "credential", "signature"}

// IsSecretName reports whether a header or query parameter named name carries
// a secret: Authorization, Cookie, Proxy-Authorization, X-Api-Key, and any name
// containing token, secret, key, auth, pass, cookie, session, credential or
// signature, in any case.
func IsSecretName(name string) bool {
	n := strings.ToLower(name)
	for _, p := range secretParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// RedactHeaders returns h as a map for Config.Headers: multiple values joined
// with ", ", and the value of every secret header (IsSecretName) replaced by
// Redacted, so secrets never appear in reports.
func RedactHeaders(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		if IsSecretName(k) {
			m[k] = Redacted
		} else {
			m[k] = strings.Join(vs, ", ")
		}
	}
	return m
}

// redactMap is RedactHeaders for a map already flattened; it returns a copy.
func redactMap(h map[string]string) map[string]string {
	m := make(map[string]string, len(h))
	for k, v := range h {
		if IsSecretName(k) {
			v = Redacted
		}
		m[k] = v
	}
	return m
}

// RedactURL removes secrets from a target URL for reports: user info
// (ws://user:pass@host, or a bare token as user) becomes "redacted", and the
// value of every secret query parameter (IsSecretName, e.g. ?token=...)
// becomes "redacted". A URL that does not parse is replaced entirely, since
// what it holds cannot be told apart.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Redacted
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "redacted"
		} else {
			changed := false
			for k, vs := range q {
				if IsSecretName(k) {
					for i := range vs {
						vs[i] = "redacted"
					}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	return u.String()
}
