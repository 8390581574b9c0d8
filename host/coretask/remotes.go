package coretask

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/tasks"
)

// UpdateRemoteArgs carry the full, validated new state of a remote. They
// hold the remote's secrets, so they are never logged (see LogValue).
type UpdateRemoteArgs struct {
	Remote db.Remote `json:"remote"`
}

// LogValue keeps slog from printing the secrets.
func (a UpdateRemoteArgs) LogValue() slog.Value { return a.Remote.LogValue() }

// String keeps fmt from printing the secrets.
func (a UpdateRemoteArgs) String() string { return a.Remote.String() }

func (d Deps) updateRemote(ctx context.Context, t *tasks.Task) error {
	var a UpdateRemoteArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	if _, err := d.DB.UpdateRemote(ctx, a.Remote); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return fmt.Errorf("a remote named %q already exists", a.Remote.Name)
		}
		return fmt.Errorf("update remote %s: %w", a.Remote.ID, err)
	}
	return nil
}

// deleteRemote takes IDArgs.
func (d Deps) deleteRemote(ctx context.Context, t *tasks.Task) error {
	var a IDArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	if err := d.DB.DeleteRemote(ctx, a.ID); err != nil {
		return fmt.Errorf("delete remote %s: %w", a.ID, err)
	}
	return nil
}
