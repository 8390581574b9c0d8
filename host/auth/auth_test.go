package auth

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// fakeUsers is an in-memory AdminStore counting lookups.
type fakeUsers struct {
	mu      sync.Mutex
	users   map[string]db.User
	lookups int
}

func (f *fakeUsers) GetUserByName(_ context.Context, name string) (db.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	u, ok := f.users[name]
	if !ok {
		return db.User{}, db.ErrNotFound
	}
	return u, nil
}

func (f *fakeUsers) CountUsers(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.users)), nil
}

func (f *fakeUsers) CreateUser(_ context.Context, u db.User) (db.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[u.Username]; ok {
		return u, db.ErrConflict
	}
	u.ID = uuid.New()
	f.users[u.Username] = u
	return u, nil
}

func (f *fakeUsers) UpdateUser(_ context.Context, u db.User) (db.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[u.Username] = u
	return u, nil
}

func newFake(t testing.TB, users ...string) *fakeUsers {
	f := &fakeUsers{users: map[string]db.User{}}
	for _, name := range users {
		h, err := Hash(name + "-password")
		if err != nil {
			t.Fatal(err)
		}
		f.users[name] = db.User{ID: uuid.New(), Username: name, PasswordHash: h, IsActive: true}
	}
	return f
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	store := newFake(t, "alice")
	a := NewAuthenticator(store, time.Minute)
	ctx := context.Background()
	u, err := a.Authenticate(ctx, "alice", "alice-password")
	if err != nil || u.Username != "alice" {
		t.Fatalf("good credentials: %v %v", u, err)
	}
	for _, c := range [][2]string{{"alice", "wrong"}, {"alice", ""}, {"nobody", "alice-password"}, {"alice", strings.Repeat("x", 100)}} {
		if _, err := a.Authenticate(ctx, c[0], c[1]); err != ErrBadCredentials {
			t.Errorf("%q/%q: %v, want ErrBadCredentials", c[0], c[1], err)
		}
	}
	// A cached success does not read the store again...
	before := store.lookups
	if _, err := a.Authenticate(ctx, "alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	if store.lookups != before {
		t.Errorf("cached credentials looked up the store again")
	}
	// ...until it expires or is forgotten.
	a.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := a.Authenticate(ctx, "alice", "alice-password"); err != nil || store.lookups != before+1 {
		t.Errorf("expired entry: err %v, lookups %d, want %d", err, store.lookups, before+1)
	}
	a.now = time.Now
	a.Forget()
	store.users["alice"] = db.User{ID: store.users["alice"].ID, Username: "alice", PasswordHash: store.users["alice"].PasswordHash, IsActive: false}
	if _, err := a.Authenticate(ctx, "alice", "alice-password"); err != ErrBadCredentials {
		t.Errorf("inactive user after Forget: %v", err)
	}
}

func TestLike(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s, pattern string
		want       bool
	}{
		{"file.view_filerepository", `file.view\_filerepository`, true},
		{"file.view_filerepository", `%.view\_%repository`, true},
		{"file.view_fileremote", `%.view\_%repository`, false},
		{"file.viewXfilerepository", `file.view\_filerepository`, false},
		{"file.view_filerepository_version", `%.view\_%repository`, false},
		{"core.view_task", `core.view\_task`, true},
		{"x", `%`, true},
		{"ab", `a%b%`, true},
		{"ab", `a%c`, false},
	} {
		if got := Like(c.s, c.pattern); got != c.want {
			t.Errorf("Like(%q, %q) = %v, want %v", c.s, c.pattern, got, c.want)
		}
	}
	if EscapeLike("a_b%c") != `a\_b\%c` {
		t.Errorf("EscapeLike: %q", EscapeLike("a_b%c"))
	}
}

func TestBootstrapGenerates(t *testing.T) {
	t.Parallel()
	store := newFake(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	file := filepath.Join(t.TempDir(), "admin-password")
	if err := Bootstrap(context.Background(), store, Admin{GeneratedFile: file}, log); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	password := strings.TrimSpace(string(b))
	if len(password) < 20 {
		t.Fatalf("generated password %d characters", len(password))
	}
	if strings.Contains(logs.String(), password) || !strings.Contains(logs.String(), file) {
		t.Errorf("log must name the file and not the password: %s", logs.String())
	}
	a := NewAuthenticator(store, 0)
	u, err := a.Authenticate(context.Background(), "admin", password)
	if err != nil || !u.IsSuperuser {
		t.Fatalf("generated admin: %+v %v", u, err)
	}
	// A second start changes nothing.
	if err := Bootstrap(context.Background(), store, Admin{GeneratedFile: file + "2"}, log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file + "2"); !os.IsNotExist(err) {
		t.Errorf("second bootstrap wrote a password file: %v", err)
	}
}

func TestBootstrapConfigured(t *testing.T) {
	t.Parallel()
	store := newFake(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	if err := Bootstrap(ctx, store, Admin{Username: "root", Password: "first-password"}, log); err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(store, 0)
	if _, err := a.Authenticate(ctx, "root", "first-password"); err != nil {
		t.Fatal(err)
	}
	// The file wins over nothing, and a changed password is applied.
	pf := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pf, []byte("second-password\n"), 0o600)
	if err := Bootstrap(ctx, store, Admin{Username: "root", PasswordFile: pf}, log); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "root", "first-password"); err != ErrBadCredentials {
		t.Errorf("old password still accepted: %v", err)
	}
	if u, err := a.Authenticate(ctx, "root", "second-password"); err != nil || !u.IsSuperuser {
		t.Errorf("new password: %+v %v", u, err)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	m := ModelOf(Repository, "container", "container-push")
	if m.Perm("view") != "container.view_containerpushrepository" || m.Role("owner") != "container.containerpushrepository_owner" {
		t.Errorf("model names: %s %s", m.Perm("view"), m.Role("owner"))
	}
	if p := ModelOf(ContentGuard, "core", "rbac").Perm("download"); p != RBACGuardDownload {
		t.Errorf("rbac guard permission %s, want %s", p, RBACGuardDownload)
	}
	g := ModelOf(ContentGuard, "core", "content_redirect")
	if g.Perm("view") != "core.view_contentredirectcontentguard" {
		t.Errorf("guard model: %s", g.Perm("view"))
	}
	roles := ModelOf(Repository, "file", "file").Roles()
	var owner db.Role
	for _, r := range roles {
		if r.Name == "file.filerepository_owner" {
			owner = r
		}
	}
	want := []string{"file.view_filerepository", "file.change_filerepository", "file.delete_filerepository", "file.modify_filerepository",
		"file.sync_filerepository", "file.repair_filerepository", "file.manage_roles_filerepository", "file.delete_filerepository_version"}
	if strings.Join(owner.Permissions, ",") != strings.Join(want, ",") {
		t.Errorf("owner permissions %v, want %v", owner.Permissions, want)
	}
}

// BenchmarkAuthenticate shows what the credential cache saves per request.
func BenchmarkAuthenticate(b *testing.B) {
	store := newFake(b, "alice")
	for _, ttl := range []time.Duration{0, time.Minute} {
		name := "uncached"
		if ttl > 0 {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			a := NewAuthenticator(store, ttl)
			for b.Loop() {
				if _, err := a.Authenticate(context.Background(), "alice", "alice-password"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
