package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// PermissionStore is what authorization reads.
type PermissionStore interface {
	// Permissions lists the permissions of user's roles (its own and its
	// groups'), global ones plus those on object when it is not nil.
	Permissions(ctx context.Context, user uuid.UUID, object *uuid.UUID) ([]string, error)
}

// Authorizer answers "may user U do A on O". The registry's token server
// and the content app's rbac guard use it as the API does.
type Authorizer struct {
	Store PermissionStore
}

// Perms is a set of permissions; All means a superuser's.
type Perms struct {
	All  bool
	list []string // sorted
}

// Has reports whether p is granted.
func (p Perms) Has(perm string) bool {
	if p.All {
		return true
	}
	_, ok := slices.BinarySearch(p.list, perm)
	return ok
}

// Match reports whether a granted permission matches pattern, where "%"
// matches any run of characters (the pattern language of db.Visible).
func (p Perms) Match(pattern string) bool {
	if p.All {
		return true
	}
	for _, perm := range p.list {
		if Like(perm, pattern) {
			return true
		}
	}
	return false
}

// List returns the granted permissions, sorted.
func (p Perms) List() []string { return slices.Clone(p.list) }

// Permissions returns what u may do, globally and on object (nil: globally
// only). A nil user has no permission.
func (a *Authorizer) Permissions(ctx context.Context, u *User, object *uuid.UUID) (Perms, error) {
	if u == nil {
		return Perms{}, nil
	}
	if u.IsSuperuser {
		return Perms{All: true}, nil
	}
	list, err := a.Store.Permissions(ctx, u.ID, object)
	if err != nil {
		return Perms{}, fmt.Errorf("permissions of %s: %w", u.Username, err)
	}
	slices.Sort(list)
	return Perms{list: list}, nil
}

// Can reports whether u holds perm globally or on object.
func (a *Authorizer) Can(ctx context.Context, u *User, perm string, object uuid.UUID) (bool, error) {
	p, err := a.Permissions(ctx, u, &object)
	if err != nil {
		return false, err
	}
	return p.Has(perm), nil
}

// Like matches s against a LIKE pattern using "%" and "\" escapes ("_"
// must be escaped, as the patterns here only ever mean it literally).
func Like(s, pattern string) bool {
	// Split on unescaped %: each piece must appear in order.
	var pieces []string
	var cur strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '\\' && i+1 < len(pattern):
			i++
			cur.WriteByte(pattern[i])
		case c == '%':
			pieces = append(pieces, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	pieces = append(pieces, cur.String())
	if len(pieces) == 1 {
		return s == pieces[0]
	}
	if !strings.HasPrefix(s, pieces[0]) {
		return false
	}
	s = s[len(pieces[0]):]
	last := pieces[len(pieces)-1]
	for _, p := range pieces[1 : len(pieces)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}

// EscapeLike escapes a literal for a LIKE pattern.
func EscapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// RBACGuardDownload is the permission a core.rbac content guard checks.
const RBACGuardDownload = "core.download_rbaccontentguard"

// MayDownload tells the content app whether the request's user (in ctx)
// may download through the core.rbac content guard with this id.
func (a *Authorizer) MayDownload(ctx context.Context, guard uuid.UUID) (bool, error) {
	return a.Can(ctx, UserFrom(ctx), RBACGuardDownload, guard)
}
