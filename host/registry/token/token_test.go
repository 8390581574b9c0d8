package token

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/registry"
)

func TestLoadKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadKey(dir)
	if err != nil || len(k1) != 32 {
		t.Fatalf("generate: %v %d", err, len(k1))
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st, err)
	}
	k2, err := LoadKey(dir)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("second load gave another key: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	s := &Signer{Key: []byte("0123456789abcdef0123456789abcdef"), Issuer: "pulpo", Now: func() time.Time { return now }}
	c := Claims{Issuer: "pulpo", Audience: "reg:80", ExpiresAt: now.Add(time.Minute).Unix(),
		Access: []Grant{{Type: "repository", Name: "a/b", Actions: []string{"pull"}}}}
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Verify(tok, "reg:80"); err != nil || !got.Allows("repository", "a/b", "pull") || got.Allows("repository", "a/b", "push") {
		t.Fatalf("good token: %+v %v", got, err)
	}
	if _, err := s.Verify(tok, "other:80"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong audience accepted: %v", err)
	}
	other := &Signer{Key: []byte("another key of thirty-two bytes!"), Issuer: "pulpo", Now: s.Now}
	if _, err := other.Verify(tok, "reg:80"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged signature accepted: %v", err)
	}
	parts := strings.Split(tok, ".")
	none := strings.Replace(tok, parts[0], "eyJhbGciOiJub25lIn0", 1)
	if _, err := s.Verify(none, "reg:80"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("alg none accepted: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := s.Verify(tok, "reg:80"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired token accepted: %v", err)
	}
}

// authEnv is a token server and a registry stand-in guarded by Access, over real HTTP
// against a real database.
type authEnv struct {
	t      *testing.T
	db     *db.DB
	srv    *httptest.Server
	signer *Signer
	model  auth.Model
}

func newAuthEnv(t *testing.T) *authEnv {
	ctx := context.Background()
	d := db.New(dbtest.NewPool(t), nil)
	model := auth.ModelOf(auth.Distribution, "container", "container")
	if err := d.SyncBuiltinRoles(ctx, model.Roles()); err != nil {
		t.Fatal(err)
	}
	signer := &Signer{Key: []byte("0123456789abcdef0123456789abcdef"), Issuer: "pulpo"}
	ts := &Server{Signer: signer, Users: auth.NewAuthenticator(d, time.Minute), Perms: &auth.Authorizer{Store: d},
		Dists: d, DistributionType: "container.container", Model: model, TTL: 5 * time.Minute, Log: slog.New(slog.DiscardHandler)}
	acc := &Access{Signer: signer, Policy: ts}
	mux := http.NewServeMux()
	mux.Handle("/token", ts)
	// /v2/<action>/<name>: allowed or the refusal's status and challenge.
	mux.HandleFunc("/v2/{action}/{name...}", func(w http.ResponseWriter, r *http.Request) {
		rows, err := d.RegistryDistributions(r.Context(), "container.container")
		if err != nil {
			t.Error(err)
		}
		req := registry.AccessRequest{Name: r.PathValue("name"), Action: registry.Action(r.PathValue("action"))}
		for _, row := range rows {
			if row.BasePath == req.Name {
				req.Exists, req.Private = true, row.Private
			}
		}
		err = acc.Allow(r, req)
		var ch *registry.Challenge
		switch {
		case err == nil:
			w.WriteHeader(http.StatusOK)
		case errors.As(err, &ch) && errors.Is(err, registry.ErrUnauthorized):
			w.Header().Set("WWW-Authenticate", ch.Header)
			w.WriteHeader(http.StatusUnauthorized)
		case errors.Is(err, registry.ErrDenied):
			w.WriteHeader(http.StatusForbidden)
		default:
			t.Errorf("unexpected refusal %v", err)
		}
	})
	srv := httptest.NewServer(auth.NewAuthenticator(d, time.Minute).Middleware(mux, "/pulp/api/", slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return &authEnv{t: t, db: d, srv: srv, signer: signer, model: model}
}

func (e *authEnv) user(name string, super bool) db.User {
	h, err := auth.Hash(name + "-pw")
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.db.CreateUser(context.Background(), db.User{Username: name, PasswordHash: h, IsActive: true, IsSuperuser: super})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *authEnv) dist(name string, private bool) db.Distribution {
	fields, _ := json.Marshal(map[string]bool{"private": private})
	d, err := e.db.CreateDistribution(context.Background(), db.Distribution{PulpType: "container.container", Name: name,
		BasePath: name, Fields: fields})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// token asks for scopes as user (anonymous when empty) and returns the token.
func (e *authEnv) token(user string, scopes ...string) string {
	e.t.Helper()
	q := "service=" + strings.TrimPrefix(e.srv.URL, "http://")
	for _, s := range scopes {
		q += "&scope=" + s
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/token?"+q, nil)
	if user != "" {
		req.SetBasicAuth(user, user+"-pw")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil || body.AccessToken == "" || body.Token != body.AccessToken || body.ExpiresIn != 300 || body.IssuedAt == "" {
		e.t.Fatalf("token for %q: %d %s", user, resp.StatusCode, b)
	}
	return body.AccessToken
}

// try does action on name with tok (or "basic:<user>") and returns the status and
// challenge.
func (e *authEnv) try(tok, action, name string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v2/"+action+"/"+name, nil)
	if user, ok := strings.CutPrefix(tok, "basic:"); ok {
		req.SetBasicAuth(user, user+"-pw")
	} else if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	ctx := context.Background()
	e.user("admin", true)
	bob := e.user("bob", false)
	e.dist("pub", false)
	priv := e.dist("team/priv", true)
	privHref := "/pulp/api/v3/distributions/container/container/" + priv.ID.String() + "/"
	host := strings.TrimPrefix(e.srv.URL, "http://")

	// Anonymous: public pulls pass without a token; the rest is challenged.
	if st, _ := e.try("", "pull", "pub"); st != http.StatusOK {
		t.Fatalf("anonymous public pull: %d", st)
	}
	st, ch := e.try("", "push", "pub")
	want := `Bearer realm="http://` + host + `/token",service="` + host + `",scope="repository:pub:pull,push"`
	if st != http.StatusUnauthorized || ch != want {
		t.Fatalf("anonymous push: %d %q, want %q", st, ch, want)
	}
	if st, ch := e.try("", "pull", "team/priv"); st != http.StatusUnauthorized || !strings.Contains(ch, `scope="repository:team/priv:pull"`) {
		t.Fatalf("anonymous private pull: %d %q", st, ch)
	}
	anon := e.token("", "repository:team/priv:pull,push", "repository:pub:pull")
	if st, ch := e.try(anon, "pull", "team/priv"); st != http.StatusUnauthorized || !strings.Contains(ch, `error="insufficient_scope"`) {
		t.Fatalf("anonymous token on private pull: %d %q", st, ch)
	}

	// The superuser gets everything.
	adm := e.token("admin", "repository:team/priv:pull,push", "repository:new/one:pull,push", "registry:catalog:*")
	for _, c := range [][2]string{{"pull", "team/priv"}, {"push", "team/priv"}, {"push", "new/one"}, {"pull", "new/one"}, {"catalog", ""}, {"login", ""}} {
		if st, ch := e.try(adm, c[0], c[1]); st != http.StatusOK {
			t.Fatalf("admin %s %s: %d %q", c[0], c[1], st, ch)
		}
	}

	// A user without roles gets no private pull and no push.
	tok := e.token("bob", "repository:team/priv:pull,push", "repository:pub:push", "repository:new/one:pull,push")
	for _, c := range [][2]string{{"pull", "team/priv"}, {"push", "team/priv"}, {"push", "pub"}, {"push", "new/one"}, {"pull", "new/one"}} {
		if st, ch := e.try(tok, c[0], c[1]); st != http.StatusUnauthorized || !strings.Contains(ch, "insufficient_scope") {
			t.Fatalf("bob without roles %s %s: %d %q", c[0], c[1], st, ch)
		}
	}

	if st, _ := e.try("basic:bob", "pull", "team/priv"); st != http.StatusForbidden {
		t.Fatalf("bob by Basic credentials without roles: %d", st)
	}
	if st, _ := e.try("basic:admin", "push", "team/priv"); st != http.StatusOK {
		t.Fatalf("admin by Basic credentials: %d", st)
	}

	// Roles on the distribution grant pull (viewer) and push (owner); the creator role
	// grants pushing new names.
	for _, a := range []db.Assignment{{Role: e.model.Role("viewer"), UserID: &bob.ID, ObjectID: &priv.ID, ObjectHref: &privHref}} {
		if _, err := e.db.Assign(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	tok = e.token("bob", "repository:team/priv:pull,push")
	if st, _ := e.try(tok, "pull", "team/priv"); st != http.StatusOK {
		t.Fatalf("viewer pull: %d", st)
	}
	if st, _ := e.try("basic:bob", "pull", "team/priv"); st != http.StatusOK {
		t.Fatalf("viewer pull by Basic credentials: %d", st)
	}
	if st, _ := e.try(tok, "push", "team/priv"); st != http.StatusUnauthorized {
		t.Fatalf("viewer push: %d", st)
	}
	for _, a := range []db.Assignment{{Role: e.model.Role("owner"), UserID: &bob.ID, ObjectID: &priv.ID, ObjectHref: &privHref}, {Role: e.model.Role("creator"), UserID: &bob.ID}} {
		if _, err := e.db.Assign(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	tok = e.token("bob", "repository:team/priv:pull,push", "repository:new/two:push", "repository:pub:push")
	for _, c := range [][2]string{{"push", "team/priv"}, {"push", "new/two"}} {
		if st, _ := e.try(tok, c[0], c[1]); st != http.StatusOK {
			t.Fatalf("owner/creator %s %s: %d", c[0], c[1], st)
		}
	}
	if st, _ := e.try(tok, "push", "pub"); st != http.StatusUnauthorized {
		t.Fatalf("push to another existing distribution: %d", st)
	}

	// Forged, expired and wrong-audience tokens are refused.
	forged := (&Signer{Key: []byte("another key of thirty-two bytes!"), Issuer: "pulpo"})
	bad, _ := forged.Sign(Claims{Issuer: "pulpo", Audience: host, ExpiresAt: time.Now().Add(time.Hour).Unix(),
		Access: []Grant{{Type: "repository", Name: "team/priv", Actions: []string{"pull"}}}})
	expired, _ := e.signer.Sign(Claims{Issuer: "pulpo", Audience: host, ExpiresAt: time.Now().Add(-time.Second).Unix(),
		Access: []Grant{{Type: "repository", Name: "team/priv", Actions: []string{"pull"}}}})
	for _, tok := range []string{bad, expired, "garbage"} {
		if st, ch := e.try(tok, "pull", "team/priv"); st != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) {
			t.Fatalf("bad token: %d %q", st, ch)
		}
	}

	// Wrong credentials and a foreign service are refused by the token endpoint.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/token?scope=repository:pub:pull", nil)
	req.SetBasicAuth("bob", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, err = http.Get(e.srv.URL + "/token?service=elsewhere&scope=repository:pub:pull")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"service"`) {
		t.Fatalf("foreign service: %d %s", resp.StatusCode, b)
	}
}
