package download

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseChallenges reads arbitrary WWW-Authenticate values, as any upstream may send:
// no panic; schemes and parameter names are lower-cased tokens; written back out with
// every value quoted, the challenges parse to the same thing; and bearerChallenge picks
// a challenge that is there.
func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`,
		`Basic realm="x", Bearer realm=https://a/t, scope="repository:a:pull,push"`,
		`Bearer realm="a\"b\\c",,,service=x`, `Negotiate abc==`, `Bearer realm="unterminated`, `=x, ,"`,
		`BEARER REALM="R" SCOPE="a b"`, "Bearer\trealm=\"x\"", `Bearer realm=""`, `Bearer =`, `"`, `\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		chs := parseChallenges(s)
		var b strings.Builder
		for i, ch := range chs {
			if ch.scheme == "" || ch.scheme != strings.ToLower(ch.scheme) || strings.ContainsAny(ch.scheme, " \t,=\"") {
				t.Fatalf("parseChallenges(%q): scheme %q", s, ch.scheme)
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ch.scheme)
			names := make([]string, 0, len(ch.params))
			for k := range ch.params {
				if k == "" || k != strings.ToLower(k) || strings.ContainsAny(k, " \t,=\"") {
					t.Fatalf("parseChallenges(%q): parameter name %q", s, k)
				}
				names = append(names, k)
			}
			slices.Sort(names)
			for j, k := range names {
				if j > 0 {
					b.WriteByte(',')
				}
				v := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(ch.params[k])
				b.WriteString(" " + k + `="` + v + `"`)
			}
		}
		again := parseChallenges(b.String())
		if len(chs) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, chs) {
			t.Fatalf("parseChallenges(%q) = %v; written as %q it reads %v", s, chs, b.String(), again)
		}
		if ch, ok := bearerChallenge([]string{s}); ok {
			if ch.scheme != "bearer" || ch.params["realm"] == "" {
				t.Fatalf("bearerChallenge(%q) = %v", s, ch)
			}
		}
	})
}

// FuzzChallengeValue writes a challenge with an arbitrary parameter value as a registry
// would (a quoted-string, backslash-escaped) and checks that it reads back exactly: scopes
// and realms with commas, quotes and backslashes survive.
func FuzzChallengeValue(f *testing.F) {
	f.Add("Bearer", "scope", "repository:a/b:pull,push")
	f.Add("bearer", "Realm", `https://a/t?x="y"\z`)
	f.Add("Basic", "realm", "")
	f.Fuzz(func(t *testing.T, scheme, name, value string) {
		token := func(s string) bool { return s != "" && !strings.ContainsAny(s, " \t,=\"") }
		if !token(scheme) || !token(name) {
			return
		}
		h := scheme + " " + name + `="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(value) + `"`
		chs := parseChallenges(h)
		if len(chs) != 1 || chs[0].scheme != strings.ToLower(scheme) || len(chs[0].params) != 1 || chs[0].params[strings.ToLower(name)] != value {
			t.Fatalf("parseChallenges(%q) = %v; want scheme %q with %s=%q", h, chs, strings.ToLower(scheme), strings.ToLower(name), value)
		}
	})
}

// FuzzParseRetryAfter reads Retry-After values of 429 and 503 answers: the wait is
// between zero and maxRetryAfter, and a number of seconds gives that many seconds
// (capped), however large: a server asking for a long pause must not get an immediate
// retry through an overflow.
func FuzzParseRetryAfter(f *testing.F) {
	for _, v := range []string{"", "0", "120", "-5", "9223372036", "9223372037", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "+3", " 7"} {
		f.Add(v)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
		if digits := strings.TrimPrefix(v, "-"); digits != "" && strings.Trim(digits, "0123456789") == "" {
			want := maxRetryAfter
			if n, err := strconv.ParseUint(digits, 10, 64); err == nil && n < uint64(maxRetryAfter/time.Second) {
				want = time.Duration(n) * time.Second
			}
			if v[0] == '-' {
				want = 0
			}
			if d != want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", v, d, want)
			}
		}
	})
}
