package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/db"
)

// bootstrapAuth stores the built-in roles of this process's object types
// and makes sure the bootstrap administrator can log in.
func bootstrapAuth(ctx context.Context, cfg config.Config, d *db.DB, roles []db.Role, log *slog.Logger) error {
	if err := d.SyncBuiltinRoles(ctx, roles); err != nil {
		return fmt.Errorf("built-in roles: %w", err)
	}
	return auth.Bootstrap(ctx, d, auth.Admin{
		Username: cfg.AdminUsername, Password: cfg.AdminPassword, PasswordFile: cfg.AdminPasswordFile,
		GeneratedFile: filepath.Join(cfg.DataDir, "admin-password"),
	}, log)
}
