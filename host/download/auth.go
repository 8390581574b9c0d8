package download

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Bearer token authentication, as container registries ask for it (the Docker
// registry token protocol, which the OCI distribution spec defers to): a
// request answered 401 with
//
//	WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/busybox:pull"
//
// is sent again with "Authorization: Bearer <token>", the token coming from a
// GET of the realm with the service and scope as query parameters, with the
// remote's basic credentials when it has them (anonymously otherwise), as
// pulp_container's RegistryAuthHttpDownloader does.
//
// Tokens are cached per (realm, service, scope) until their expires_in runs
// out, and the Downloader remembers the last challenge of each host, so that
// once a sync has a token every later request to that host carries it at once
// instead of collecting a 401 first.

// DefaultTokenLifetime is a token's lifetime when the token endpoint does not
// give expires_in (the token protocol's default).
const DefaultTokenLifetime = 60 * time.Second

// MaxTokenLifetime caps the lifetime a token endpoint claims; a token the
// registry refuses sooner is renewed anyway.
const MaxTokenLifetime = 24 * time.Hour

// maxTokenBody bounds a token endpoint's answer; real ones are a few KiB.
const maxTokenBody = 1 << 20

// challenge is one parsed WWW-Authenticate challenge.
type challenge struct {
	scheme string            // lower-cased: "bearer", "basic"
	params map[string]string // names lower-cased
}

// tokenKey identifies a cached token.
type tokenKey struct{ realm, service, scope string }

type token struct {
	value   string
	expires time.Time
}

// tokenCache holds one remote's bearer tokens. It is safe for concurrent use.
type tokenCache struct {
	now func() time.Time

	mu     sync.Mutex
	tokens map[tokenKey]token
	hosts  map[string]tokenKey      // host -> key of its last bearer challenge
	locks  map[tokenKey]chan string // one token fetch per key at a time
}

func newTokenCache() *tokenCache {
	return &tokenCache{now: time.Now, tokens: map[tokenKey]token{}, hosts: map[string]tokenKey{}, locks: map[tokenKey]chan string{}}
}

// forHost returns a valid cached token for host's last challenge, or "".
func (c *tokenCache) forHost(host string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok := c.hosts[host]
	if !ok {
		return ""
	}
	t, ok := c.tokens[key]
	if !ok || !c.now().Before(t.expires) {
		return ""
	}
	return t.value
}

// lock serialises token fetches for key, so that a burst of concurrent 401s
// fetches one token, not one each.
func (c *tokenCache) lock(ctx context.Context, key tokenKey) (func(), error) {
	c.mu.Lock()
	l, ok := c.locks[key]
	if !ok {
		l = make(chan string, 1)
		c.locks[key] = l
	}
	c.mu.Unlock()
	select {
	case l <- "":
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// get returns a valid token for key other than refused (the token a server
// just answered 401 to), calling fetch when there is none; fresh reports a
// token fetched by this call.
func (c *tokenCache) get(ctx context.Context, host string, key tokenKey, refused string, fetch func() (token, error)) (value string, fresh bool, err error) {
	unlock, err := c.lock(ctx, key)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	c.mu.Lock()
	c.hosts[host] = key
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && t.value != refused && c.now().Before(t.expires) {
		return t.value, false, nil
	}
	t, err = fetch()
	if err != nil {
		return "", false, err
	}
	c.mu.Lock()
	c.tokens[key] = t
	c.mu.Unlock()
	return t.value, true, nil
}

// bearerChallenge finds a Bearer challenge with a realm among a response's
// WWW-Authenticate values.
func bearerChallenge(values []string) (challenge, bool) {
	for _, v := range values {
		for _, ch := range parseChallenges(v) {
			if ch.scheme == "bearer" && ch.params["realm"] != "" {
				return ch, true
			}
		}
	}
	return challenge{}, false
}

// parseChallenges parses a WWW-Authenticate value (RFC 9110 section 11.6.1):
// challenges separated by commas, each a scheme followed by comma-separated
// name=value parameters whose values may be quoted strings holding commas
// (scope="repository:a:pull,push").
func parseChallenges(s string) []challenge {
	var out []challenge
	var cur *challenge
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		tok := s[:tokenEnd(s)]
		if tok == "" { // stray separator character
			s = s[1:]
			continue
		}
		rest := strings.TrimLeft(s[len(tok):], " \t")
		if !strings.HasPrefix(rest, "=") {
			// A scheme. (A token68 after one, as in "Negotiate abc==", reads as
			// a parameter of it; no scheme acted on here uses one.)
			out = append(out, challenge{scheme: strings.ToLower(tok), params: map[string]string{}})
			cur = &out[len(out)-1]
			s = rest
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			val, rest = quoted(rest)
		} else {
			n := tokenEnd(rest)
			val, rest = rest[:n], rest[n:]
		}
		if cur != nil {
			cur.params[strings.ToLower(tok)] = val
		}
		s = rest
	}
}

// tokenEnd is the length of the token (or token68) at the start of s.
func tokenEnd(s string) int {
	for i := range len(s) {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == ',' || c == '=' || c == '"':
			return i
		}
	}
	return len(s)
}

// quoted reads the quoted-string at the start of s, undoing backslash escapes,
// and returns it with what follows.
func quoted(s string) (string, string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), "" // unterminated: take the rest
}

// tokenResponse is a token endpoint's answer. Docker's endpoint sends token,
// OAuth2-style ones access_token; many send both.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// fetchToken asks ch's realm for a token for the request to u (red is u
// without credentials, for errors).
func (d *Downloader) fetchToken(ctx context.Context, u *url.URL, red string, ch challenge) (token, error) {
	realm, err := u.Parse(ch.params["realm"]) // a relative realm is resolved against the request
	if err != nil || (realm.Scheme != "http" && realm.Scheme != "https") {
		return token{}, final(fmt.Errorf("download %s: bearer challenge: realm %q is not an http(s) url", red, ch.params["realm"]))
	}
	q := realm.Query()
	if s := ch.params["service"]; s != "" {
		q.Set("service", s)
	}
	// Several scopes travel space-separated in the challenge and as repeated
	// parameters to the token endpoint.
	for _, s := range strings.Fields(ch.params["scope"]) {
		q.Add("scope", s)
	}
	realm.RawQuery = q.Encode()
	rred := redact(realm)
	fail := func(err error) (token, error) {
		return token{}, fmt.Errorf("download %s: bearer token from %s: %w", red, rred, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return fail(final(errors.New("invalid token request")))
	}
	hr.Header.Set("User-Agent", d.header.Get("User-Agent"))
	hr.Header.Set("Accept", "application/json")
	if d.username != "" || d.password != "" {
		hr.SetBasicAuth(d.username, d.password)
	}
	now := d.tokens.now()
	resp, err := d.client.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		herr := &HTTPError{URL: rred, Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			who := "anonymous access was refused; set the remote's username and password"
			if d.username != "" || d.password != "" {
				who = "the remote's username and password were refused"
			}
			return fail(fmt.Errorf("%w: %s", herr, who))
		}
		return fail(herr)
	}
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxTokenBody)).Decode(&tr); err != nil {
		return fail(final(fmt.Errorf("token response: %w", err)))
	}
	value := tr.Token
	if value == "" {
		value = tr.AccessToken
	}
	if value == "" {
		return fail(final(errors.New("token response holds neither token nor access_token")))
	}
	life := DefaultTokenLifetime
	if tr.ExpiresIn > 0 {
		// Capped before multiplying: a huge expires_in would overflow into a past expiry.
		life = time.Duration(min(tr.ExpiresIn, int64(MaxTokenLifetime/time.Second))) * time.Second
	}
	return token{value: value, expires: now.Add(life)}, nil
}

// realmOf renders a challenge's realm, resolved against the request's URL,
// without userinfo.
func realmOf(u *url.URL, realm string) string {
	r, err := u.Parse(realm)
	if err != nil {
		return "(unparsable url)"
	}
	return redact(r)
}
