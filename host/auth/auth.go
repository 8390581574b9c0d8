// Package auth authenticates API users (HTTP Basic against bcrypt hashes,
// with a short in-memory cache of verified credentials) and answers
// authorization questions in the spirit of Pulp's RBAC: a user may do
// action A on object O when one of the roles it holds, itself or through a
// group, globally or on O, lists the permission A. Superusers may do
// everything.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/pulpo/pulpo/host/db"
)

// User is the authenticated principal of a request.
type User struct {
	ID          uuid.UUID
	Username    string
	IsSuperuser bool
	IsStaff     bool
}

type userKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the request's user, nil when anonymous.
func UserFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

// ErrBadCredentials means the username or password is wrong, or the user is
// inactive; callers cannot tell which, as no client should.
var ErrBadCredentials = errors.New("invalid username/password")

// Cost is the bcrypt cost of stored hashes (bcrypt's default, ~50-100 ms
// per verification here: the cache below hides it from most requests).
const Cost = bcrypt.DefaultCost

// MaxPasswordBytes is what bcrypt reads of a password; longer ones are
// refused rather than silently cut.
const MaxPasswordBytes = 72

// Hash hashes a password for storage.
func Hash(password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", fmt.Errorf("password longer than %d bytes", MaxPasswordBytes)
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(b), nil
}

// UserStore is what authentication reads.
type UserStore interface {
	GetUserByName(ctx context.Context, name string) (db.User, error)
}

// Authenticator verifies credentials. Verified ones are cached for TTL,
// keyed by an HMAC of username and password under a per-process random key,
// so a request does not pay bcrypt's cost each time and the cache holds
// no password.
type Authenticator struct {
	store UserStore
	ttl   time.Duration
	key   []byte
	dummy []byte // hash compared against for unknown users, to take the same time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
	now   func() time.Time
}

type cached struct {
	user    User
	expires time.Time
}

// maxCached bounds the cache; when full it is emptied, which only costs
// bcrypt verifications.
const maxCached = 10000

// NewAuthenticator returns an authenticator reading users from store and
// caching verified credentials for ttl (0 disables the cache).
func NewAuthenticator(store UserStore, ttl time.Duration) *Authenticator {
	key := make([]byte, 32)
	rand.Read(key) //nolint:errcheck // never fails (crypto/rand)
	dummy, _ := bcrypt.GenerateFromPassword(key, Cost)
	return &Authenticator{store: store, ttl: ttl, key: key, dummy: dummy,
		cache: map[[sha256.Size]byte]cached{}, now: time.Now}
}

func (a *Authenticator) cacheKey(username, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [sha256.Size]byte
	copy(k[:], m.Sum(nil))
	return k
}

// Authenticate returns the active user with these credentials, or
// ErrBadCredentials.
func (a *Authenticator) Authenticate(ctx context.Context, username, password string) (*User, error) {
	k := a.cacheKey(username, password)
	if a.ttl > 0 {
		a.mu.Lock()
		c, ok := a.cache[k]
		a.mu.Unlock()
		if ok && a.now().Before(c.expires) {
			u := c.user
			return &u, nil
		}
	}
	row, err := a.store.GetUserByName(ctx, username)
	if errors.Is(err, db.ErrNotFound) {
		bcrypt.CompareHashAndPassword(a.dummy, []byte(password)) //nolint:errcheck // timing only
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if row.PasswordHash == "" || len(password) > MaxPasswordBytes ||
		bcrypt.CompareHashAndPassword([]byte(row.PasswordHash), []byte(password)) != nil || !row.IsActive {
		return nil, ErrBadCredentials
	}
	u := User{ID: row.ID, Username: row.Username, IsSuperuser: row.IsSuperuser, IsStaff: row.IsStaff}
	if a.ttl > 0 {
		a.mu.Lock()
		if len(a.cache) >= maxCached {
			clear(a.cache)
		}
		a.cache[k] = cached{user: u, expires: a.now().Add(a.ttl)}
		a.mu.Unlock()
	}
	return &u, nil
}

// Forget empties the cache; call it when a user changes, so this process
// stops accepting an old password at once (others within TTL).
func (a *Authenticator) Forget() {
	a.mu.Lock()
	clear(a.cache)
	a.mu.Unlock()
}
