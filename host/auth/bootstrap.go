package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/pulpo/pulpo/host/db"
)

// AdminStore is what Bootstrap reads and writes.
type AdminStore interface {
	UserStore
	CountUsers(ctx context.Context) (int64, error)
	CreateUser(ctx context.Context, u db.User) (db.User, error)
	UpdateUser(ctx context.Context, u db.User) (db.User, error)
}

// Admin describes the bootstrap administrator.
type Admin struct {
	Username     string
	Password     string // from configuration; wins over PasswordFile
	PasswordFile string // a file holding the password (trailing newline ignored)
	// GeneratedFile is where a generated password is written (mode 0600)
	// when neither Password nor PasswordFile is given and no user exists.
	GeneratedFile string
}

// Bootstrap makes sure an administrator can log in. With a configured
// password, the admin user is created or given that password and the
// superuser flag; without one, a first start generates a password into
// GeneratedFile and logs that file's path, never the password.
func Bootstrap(ctx context.Context, store AdminStore, a Admin, log *slog.Logger) error {
	if a.Username == "" {
		a.Username = "admin"
	}
	password := a.Password
	if password == "" && a.PasswordFile != "" {
		b, err := os.ReadFile(a.PasswordFile)
		if err != nil {
			return fmt.Errorf("admin password file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return fmt.Errorf("admin password file %s is empty", a.PasswordFile)
		}
	}
	if password != "" {
		return ensureAdmin(ctx, store, a.Username, password, log)
	}
	n, err := store.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil
	}
	buf := make([]byte, 18)
	rand.Read(buf) //nolint:errcheck // never fails (crypto/rand)
	password = fmt.Sprintf("%x", buf)
	hash, err := Hash(password)
	if err != nil {
		return err
	}
	if _, err := store.CreateUser(ctx, db.User{Username: a.Username, PasswordHash: hash, IsActive: true, IsStaff: true, IsSuperuser: true}); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return nil // another process bootstrapped at the same time
		}
		return fmt.Errorf("create admin: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(a.GeneratedFile), 0o755); err != nil {
		return fmt.Errorf("admin password file: %w", err)
	}
	if err := os.WriteFile(a.GeneratedFile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin password file: %w", err)
	}
	log.InfoContext(ctx, "created the admin user; its generated password is in a file", "username", a.Username, "file", a.GeneratedFile)
	return nil
}

func ensureAdmin(ctx context.Context, store AdminStore, username, password string, log *slog.Logger) error {
	if len(password) > MaxPasswordBytes {
		return fmt.Errorf("admin password longer than %d bytes", MaxPasswordBytes)
	}
	u, err := store.GetUserByName(ctx, username)
	if errors.Is(err, db.ErrNotFound) {
		hash, err := Hash(password)
		if err != nil {
			return err
		}
		_, err = store.CreateUser(ctx, db.User{Username: username, PasswordHash: hash, IsActive: true, IsStaff: true, IsSuperuser: true})
		if err != nil && !errors.Is(err, db.ErrConflict) {
			return fmt.Errorf("create admin: %w", err)
		}
		log.InfoContext(ctx, "created the admin user from configuration", "username", username)
		return nil
	}
	if err != nil {
		return fmt.Errorf("load admin: %w", err)
	}
	if u.IsActive && u.IsSuperuser && bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil {
		return nil
	}
	if u.PasswordHash, err = Hash(password); err != nil {
		return err
	}
	u.IsActive, u.IsSuperuser, u.IsStaff = true, true, true
	if _, err := store.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("update admin: %w", err)
	}
	log.InfoContext(ctx, "reset the admin user to its configured password", "username", username)
	return nil
}
