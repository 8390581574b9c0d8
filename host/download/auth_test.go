package download

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// registry is a fake container registry with a token endpoint at /token, in
// the manner of Docker Hub: /v2/... wants "Bearer <token>" from /token.
type registry struct {
	srv *httptest.Server
	// user and pass, when set, are the only basic credentials /token takes;
	// when empty it hands tokens to anyone.
	user, pass string
	// expiresIn is sent as expires_in when > 0.
	expiresIn int
	// tokenStatus, when set, is what /token answers instead of a token.
	tokenStatus atomic.Int64

	mu         sync.Mutex
	valid      map[string]bool // tokens /v2/ accepts
	issued     int
	tokenReqs  []*http.Request
	challenges int // 401s sent by /v2/
	served     int
}

func newRegistry(t *testing.T) *registry {
	t.Helper()
	r := &registry{valid: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *registry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path == "/token" {
		r.tokenReqs = append(r.tokenReqs, req.Clone(req.Context()))
		if st := r.tokenStatus.Load(); st != 0 {
			http.Error(w, "no", int(st))
			return
		}
		if r.user != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
				http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
				return
			}
		}
		r.issued++
		tok := fmt.Sprintf("tok-%d", r.issued)
		r.valid[tok] = true
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":%q,"access_token":%q`, tok, tok)
		if r.expiresIn > 0 {
			fmt.Fprintf(w, `,"expires_in":%d`, r.expiresIn)
		}
		fmt.Fprint(w, "}")
		return
	}
	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || !r.valid[tok] {
		r.challenges++
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="registry.test",scope="repository:lib/app:pull"`, r.srv.URL))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return
	}
	r.served++
	io.WriteString(w, "blob "+req.URL.Path)
}

func (r *registry) counts() (tokens, challenges, served int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tokenReqs), r.challenges, r.served
}

func (r *registry) revoke() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.valid = map[string]bool{}
}

func fetchString(t *testing.T, d *Downloader, url string) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	_, err := d.Fetch(t.Context(), Request{URL: url}, &buf)
	return buf.String(), err
}

func TestBearerTokenWithCredentials(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	reg.user, reg.pass = "alice", "s3cret"
	d := newD(t, Config{Username: "alice", Password: "s3cret"})
	for _, p := range []string{"/v2/lib/app/manifests/latest", "/v2/lib/app/blobs/sha256:aa", "/v2/lib/app/blobs/sha256:bb"} {
		got, err := fetchString(t, d, reg.srv.URL+p)
		if err != nil || got != "blob "+p {
			t.Fatalf("%s: err = %v, body %q", p, err, got)
		}
	}
	// One 401, one token; later requests carry the cached token at once.
	if tokens, challenges, served := reg.counts(); tokens != 1 || challenges != 1 || served != 3 {
		t.Fatalf("%d token requests, %d challenges, %d served; want 1, 1, 3", tokens, challenges, served)
	}
	tr := reg.tokenReqs[0]
	if q := tr.URL.Query(); q.Get("service") != "registry.test" || !reflect.DeepEqual(q["scope"], []string{"repository:lib/app:pull"}) {
		t.Fatalf("token request query %q", tr.URL.RawQuery)
	}
	if u, p, ok := tr.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
		t.Fatalf("token request without the remote's credentials")
	}
}

func TestBearerTokenAnonymous(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	d := newD(t, Config{})
	if got, err := fetchString(t, d, reg.srv.URL+"/v2/lib/app/tags/list"); err != nil || got != "blob /v2/lib/app/tags/list" {
		t.Fatalf("err = %v, body %q", err, got)
	}
	if h := reg.tokenReqs[0].Header.Get("Authorization"); h != "" {
		t.Fatalf("anonymous token request sent Authorization %q", h)
	}
}

func TestBearerTokenExpiry(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		expiresIn int
		life      time.Duration
	}{
		{"expires_in", 300, 300 * time.Second},
		{"default 60s", 0, DefaultTokenLifetime},
		{"huge expires_in capped", math.MaxInt64, MaxTokenLifetime},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := newRegistry(t)
			reg.expiresIn = tt.expiresIn
			d := newD(t, Config{})
			var mu sync.Mutex
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			d.tokens.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(by time.Duration) { mu.Lock(); now = now.Add(by); mu.Unlock() }
			get := func() {
				t.Helper()
				if _, err := fetchString(t, d, reg.srv.URL+"/v2/lib/app/blobs/x"); err != nil {
					t.Fatal(err)
				}
			}
			get()
			advance(tt.life - time.Second)
			get()
			if tokens, challenges, _ := reg.counts(); tokens != 1 || challenges != 1 {
				t.Fatalf("before expiry: %d token requests, %d challenges; want 1, 1", tokens, challenges)
			}
			// Past its lifetime the token is not sent; the 401 brings a new one.
			advance(2 * time.Second)
			get()
			if tokens, challenges, _ := reg.counts(); tokens != 2 || challenges != 2 {
				t.Fatalf("after expiry: %d token requests, %d challenges; want 2, 2", tokens, challenges)
			}
		})
	}
}

func TestBearerTokenRefusedIsRenewedOnce(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	d := newD(t, Config{})
	if _, err := fetchString(t, d, reg.srv.URL+"/v2/lib/app/blobs/a"); err != nil {
		t.Fatal(err)
	}
	// The registry forgets its tokens before the cached one expires.
	reg.revoke()
	if _, err := fetchString(t, d, reg.srv.URL+"/v2/lib/app/blobs/b"); err != nil {
		t.Fatal(err)
	}
	if tokens, challenges, served := reg.counts(); tokens != 2 || challenges != 2 || served != 2 {
		t.Fatalf("%d token requests, %d challenges, %d served; want 2, 2, 2", tokens, challenges, served)
	}
}

func TestBearerTokenConcurrentRequestsShareOneToken(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	d := newD(t, Config{DownloadConcurrency: 20})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := fetchString(t, d, fmt.Sprintf("%s/v2/lib/app/blobs/%d", reg.srv.URL, i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if tokens, _, served := reg.counts(); tokens != 1 || served != 20 {
		t.Fatalf("%d token requests, %d served; want 1, 20", tokens, served)
	}
}

func TestBearerTokenErrors(t *testing.T) {
	t.Parallel()
	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		reg := newRegistry(t)
		reg.user, reg.pass = "alice", "s3cret"
		d := newD(t, Config{Username: "alice", Password: "wrong"})
		u := reg.srv.URL + "/v2/lib/app/manifests/latest"
		_, err := fetchString(t, d, u)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
			t.Fatalf("err = %v, want an HTTP 401", err)
		}
		for _, s := range []string{u, reg.srv.URL + "/token", "username and password were refused"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not name %q", err, s)
			}
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error %q leaks the password", err)
		}
		if tokens, _, _ := reg.counts(); tokens != 1 {
			t.Fatalf("%d token requests: a refused login is not retried", tokens)
		}
	})
	t.Run("anonymous refused", func(t *testing.T) {
		t.Parallel()
		reg := newRegistry(t)
		reg.user, reg.pass = "alice", "s3cret"
		_, err := fetchString(t, newD(t, Config{}), reg.srv.URL+"/v2/lib/app/manifests/latest")
		if err == nil || !strings.Contains(err.Error(), "set the remote's username and password") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("token endpoint 503 is retried", func(t *testing.T) {
		t.Parallel()
		reg := newRegistry(t)
		reg.tokenStatus.Store(http.StatusServiceUnavailable)
		d := newD(t, Config{MaxRetries: intp(2)})
		_, err := fetchString(t, d, reg.srv.URL+"/v2/lib/app/blobs/x")
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "after 3 attempts") {
			t.Fatalf("err = %v", err)
		}
		reg.tokenStatus.Store(0)
		if _, err := fetchString(t, d, reg.srv.URL+"/v2/lib/app/blobs/x"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fresh token refused", func(t *testing.T) {
		t.Parallel()
		srv, n := counted(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/token" {
				io.WriteString(w, `{"token":"useless"}`)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="/token"`) // relative to the request
			w.WriteHeader(http.StatusUnauthorized)
		})
		u := srv.URL + "/v2/x/blobs/y"
		_, err := fetchString(t, newD(t, Config{}), u)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), u) ||
			!strings.Contains(err.Error(), "from "+srv.URL+"/token was refused too") {
			t.Fatalf("err = %v", err)
		}
		if n.Load() != 3 { // request, token, request: no retry of a 401
			t.Fatalf("%d requests, want 3", n.Load())
		}
	})
	t.Run("basic challenge uses the remote's credentials", func(t *testing.T) {
		t.Parallel()
		srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "pw" {
				w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "ok")
		})
		if got, err := fetchString(t, newD(t, Config{Username: "bob", Password: "pw"}), srv.URL+"/v2/"); err != nil || got != "ok" {
			t.Fatalf("err = %v, body %q", err, got)
		}
		_, err := fetchString(t, newD(t, Config{Username: "bob", Password: "nope"}), srv.URL+"/v2/")
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), srv.URL+"/v2/") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestParseChallenges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []challenge
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`,
			[]challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}}}},
		{`Basic realm="Registry Realm", BEARER Realm="https://a/t" , Scope="repository:x:pull,push",error="invalid_token"`,
			[]challenge{
				{"basic", map[string]string{"realm": "Registry Realm"}},
				{"bearer", map[string]string{"realm": "https://a/t", "scope": "repository:x:pull,push", "error": "invalid_token"}},
			}},
		{`Bearer realm=https://a/t,service=reg`, []challenge{{"bearer", map[string]string{"realm": "https://a/t", "service": "reg"}}}},
		{`Bearer realm="a\"b\\c"`, []challenge{{"bearer", map[string]string{"realm": `a"b\c`}}}},
		{`Bearer realm="unterminated`, []challenge{{"bearer", map[string]string{"realm": "unterminated"}}}},
		{``, nil},
	}
	for _, tt := range tests {
		if got := parseChallenges(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseChallenges(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if _, ok := bearerChallenge([]string{`Basic realm="x"`, `Bearer service="no realm"`}); ok {
		t.Error("a bearer challenge without realm was taken")
	}
	if ch, ok := bearerChallenge([]string{`Basic realm="x"`, `Bearer realm="r"`}); !ok || ch.params["realm"] != "r" {
		t.Errorf("bearer challenge in a second header value: %v %v", ch, ok)
	}
}

// TestBearerTokenPerScope follows a registry whose scope differs per repository: a token
// cached for one scope is used for it again, and a cached token the server revoked is
// replaced rather than reported as refused.
func TestBearerTokenPerScope(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	valid := map[string]string{} // token -> scope
	issued := 0
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/token" {
			issued++
			tok := fmt.Sprintf("t%d", issued)
			valid[tok] = r.URL.Query().Get("scope")
			fmt.Fprintf(w, `{"token":%q}`, tok)
			return
		}
		repo := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")[0]
		scope := "repository:" + repo + ":pull"
		if tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); valid[tok] != scope {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="/token",scope=%q`, scope))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	})
	d := newD(t, Config{})
	for i, p := range []string{"/v2/a/x", "/v2/b/x", "/v2/a/y", "revoke", "/v2/b/z"} {
		if p == "revoke" {
			mu.Lock()
			valid = map[string]string{}
			mu.Unlock()
			continue
		}
		if got, err := fetchString(t, d, srv.URL+p); err != nil || got != "ok" {
			t.Fatalf("request %d %s: %v %q", i, p, err, got)
		}
	}
	// a, b, then a again from the cache; after the revocation the cached b is refused
	// and replaced.
	if issued != 3 {
		t.Fatalf("%d tokens issued, want 3", issued)
	}
}
