package tasks

import (
	"context"

	"github.com/google/uuid"
)

type taskIDKey struct{}
type requestIDKey struct{}

func withTaskID(ctx context.Context, id uuid.UUID) context.Context {
	return context.WithValue(ctx, taskIDKey{}, id)
}

func taskIDFrom(ctx context.Context) (uuid.UUID, bool) {
	id, ok := ctx.Value(taskIDKey{}).(uuid.UUID)
	return id, ok
}

// WithRequestID tags ctx with the API request id; dispatched tasks record it
// as their logging_cid.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id set by WithRequestID.
func RequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}
