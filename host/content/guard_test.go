package content

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/db"
)

func TestGuards(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	repo, _, _ := e.repo(file{path: "f1.txt", body: []byte("guarded"), stored: true}, file{path: "dir/f2.txt", body: []byte("2"), stored: true})
	guard := func(typ string, fields string) *db.ContentGuard {
		g, err := e.db.CreateContentGuard(e.ctx, db.ContentGuard{PulpType: typ, Name: e.name("guard"), Fields: json.RawMessage(fields)})
		if err != nil {
			t.Fatal(err)
		}
		return &g
	}
	secret := strings.Repeat("ab", 32)
	hdr := guard("core.header", `{"header_name": "x-secret-key", "header_value": "open sesame"}`)
	red := guard("core.content_redirect", `{"shared_secret": "`+secret+`"}`)
	rbac := guard("core.rbac", `{}`)
	bad := guard("core.content_redirect", `{"shared_secret": "not hex"}`)
	jq := guard("core.header", `{"header_name": "x-a", "header_value": "b", "jq_filter": ".x"}`)
	for base, g := range map[string]*db.ContentGuard{"h": hdr, "r": red, "rbac": rbac, "bad": bad, "jq": jq} {
		e.distribution(db.Distribution{PulpType: "file.version", BasePath: base, RepositoryID: &repo.ID, ContentGuardID: &g.ID})
	}

	e.want("/pulp/content/h/f1.txt", 403, "")
	e.want("/pulp/content/h/f1.txt", 403, "", "X-Secret-Key", "open sesame!")
	e.want("/pulp/content/h/f1.txt", 200, "guarded", "X-Secret-Key", "open sesame")
	e.want("/pulp/content/h/", 403, "") // listings are guarded too

	signed, err := SignURL(e.srv.URL+"/pulp/content/r/f1.txt?x=1", secret, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(signed, e.srv.URL)
	e.want(path, 200, "guarded")
	e.want("/pulp/content/r/f1.txt", 403, "")
	u, _ := url.Parse(path)
	tok := u.Query().Get("validate_token")
	exp, sig, _ := strings.Cut(tok, ":")
	for name, p := range map[string]string{
		"other path":    "/pulp/content/r/dir/f2.txt?validate_token=" + url.QueryEscape(tok),
		"later expiry":  "/pulp/content/r/f1.txt?validate_token=" + url.QueryEscape("9"+exp+":"+sig),
		"altered sig":   "/pulp/content/r/f1.txt?validate_token=" + url.QueryEscape(exp+":"+strings.Repeat("0", len(sig))),
		"garbage token": "/pulp/content/r/f1.txt?validate_token=zzz",
	} {
		if resp, _ := e.get(p); resp.StatusCode != 403 {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	expired, _ := SignURL("/pulp/content/r/f1.txt", secret, time.Now().Add(-time.Second))
	e.want(expired, 403, "")
	wrongKey, _ := SignURL("/pulp/content/r/f1.txt", strings.Repeat("cd", 32), time.Now().Add(time.Minute))
	e.want(wrongKey, 403, "")
	if _, err := SignURL("/x", "nothex", time.Now()); err == nil {
		t.Fatal("SignURL accepted a bad secret")
	}

	// Guards this host cannot evaluate deny.
	for _, base := range []string{"rbac", "bad", "jq"} {
		e.want("/pulp/content/"+base+"/f1.txt", 403, "", "X-A", "b")
	}

	// Removing the guard opens the distribution (ON DELETE SET NULL).
	if err := e.db.DeleteContentGuard(e.ctx, hdr.ID); err != nil {
		t.Fatal(err)
	}
	e.sync()
	e.want("/pulp/content/h/f1.txt", 200, "guarded")
}
